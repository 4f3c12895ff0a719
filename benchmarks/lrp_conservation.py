"""LRP on networks nobody here wrote: does the relevance still add up to the explained logit?

LRP-0 (the ``epsilon`` composite at epsilon 1e-12, float64) redistributes the logit: with every bias
set to zero (a bias takes its own share), the input relevance sums to it exactly where every operation
on the way is handled: a known answer of 1.0 per input.
Squeeze-and-excitation gates (``x * sigmoid(fc(pool(x)))``), a functional swish, global pooling
written as ``x.mean(dim=(2, 3))`` and scaling by a constant are not modules, so they are handled by
the canonizers (``medlens/attribution/lrp/canonizers.py``); before them MONAI's SEResNet50 summed to
about 1e12 times its logit (and, at 32^2, where its last stage is 1x1 and gate and signal share a
shape, 7,716 times). MONAI's ViT (``vit``: 2 layers, 2 heads, width 32, patch 8) passes attention
with its probabilities held constant and the values by the epsilon rule, and its layer norms by the
LN rule (Ali et al., ICML 2022); its class token and position embedding, parameters the tokens
receive as a bias would be, are zeroed too (with ``P^T R`` for the values and layer norms as
identities it summed to -3.2 and 1.3 times the logit). For each network, random weights (seed 0, biases zeroed) and inputs (seed 1): the
ratio of the input relevance's sum to the logit, per input, for LRP-0 and for the default
``epsilon-plus`` composite (z+ on convolutions, epsilon 1e-6 on dense layers: close to 1, not exact).

    OMP_NUM_THREADS=1 python benchmarks/lrp_conservation.py            # about 15 s
    OMP_NUM_THREADS=1 python benchmarks/lrp_conservation.py --quick    # 32^2 and the small networks

Stores ``benchmarks/results/lrp_conservation.json`` (``-quick``) through ``_runner.write_result``.
"""

from __future__ import annotations

import argparse
import warnings

from _runner import options, provenance, quick_name, quick_option, write_result

QUICK = {"size": 32, "networks": "functional-cnn,seresnet50,vit"}
NETWORKS = "functional-cnn,seresnet50,seresnext50,seresnet101,densenet121,resnet18,vit"


def functional_cnn():
    """A hand-written CNN: a squeeze-and-excitation gate, a residual sum, a functional swish, input
    scaling by a constant and global pooling by ``mean`` (none of them a module)."""
    import torch
    from torch import nn

    class FunctionalCNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.stem = nn.Conv2d(1, 8, 3, padding=1)
            self.conv = nn.Conv2d(8, 8, 3, padding=1)
            self.squeeze, self.excite = nn.Linear(8, 2), nn.Linear(2, 8)
            self.head = nn.Linear(8, 3)

        def forward(self, x):
            h = torch.relu(self.stem(x / 255.0))
            g = torch.relu(self.conv(h))
            gate = torch.sigmoid(self.excite(torch.relu(self.squeeze(g.mean(dim=(2, 3))))))
            h = h + g * gate[:, :, None, None]
            h = h * torch.sigmoid(h)
            return self.head(h.mean(dim=(2, 3)))

    return FunctionalCNN()


def build(name: str, size: int):
    from monai.networks import nets

    makers = {
        "functional-cnn": functional_cnn,
        "seresnet50": lambda: nets.SEResNet50(spatial_dims=2, in_channels=1, num_classes=3),
        "seresnext50": lambda: nets.SEResNext50(spatial_dims=2, in_channels=1, num_classes=3),
        "seresnet101": lambda: nets.SEResNet101(spatial_dims=2, in_channels=1, num_classes=3),
        "densenet121": lambda: nets.DenseNet121(spatial_dims=2, in_channels=1, out_channels=3),
        "resnet18": lambda: nets.resnet18(spatial_dims=2, n_input_channels=1, num_classes=3),
        "vit": lambda: nets.ViT(in_channels=1, img_size=(size, size), patch_size=(8, 8), hidden_size=32, mlp_dim=64,
                                num_layers=2, num_heads=2, classification=True, num_classes=3, spatial_dims=2),
    }
    return makers[name]()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options(parser, "lrp_conservation", seed=None)
    quick_option(parser, QUICK)
    parser.add_argument("--size", type=int, default=64, help="input side (default 64)")
    parser.add_argument("--networks", default=NETWORKS, help=f"comma-separated (default {NETWORKS})")
    args = parser.parse_args()
    name = quick_name(args, "lrp_conservation", QUICK)

    import torch

    import medlens

    torch.set_num_threads(args.threads)
    origin = provenance(seed=0, config=vars(args))
    rows = []
    for net in args.networks.split(","):
        torch.manual_seed(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = build(net, args.size).double().eval()
        with torch.no_grad():  # a bias takes its share of the relevance: without them LRP-0 must give it all back
            for module in model.modules():
                if isinstance(getattr(module, "bias", None), torch.Tensor):
                    module.bias.zero_()
            for pname, p in model.named_parameters():  # given to the tokens, as a bias is to a layer's output
                if pname == "cls_token" or pname.endswith("position_embeddings"):
                    p.zero_()
        x = torch.randn(2, 1, args.size, args.size, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
        if net == "functional-cnn":
            x = x * 60 + 120  # pixel values, scaled by the model itself
        with torch.no_grad():
            out = model(x)
            logits = (out[0] if isinstance(out, tuple) else out)[:, 0]  # MONAI's ViT: (logits, hidden states)
        row = {"network": net, "logit": [float(v) for v in logits]}
        for label, opts in (("lrp0", {"composite": "epsilon", "epsilon": 1e-12}), ("epsilon_plus", {})):
            sums = medlens.explain(model, x, 0, "lrp", **opts).values.sum(dim=(1, 2, 3))
            row[f"{label}_ratio"] = [round(float(s / v), 6) for s, v in zip(sums, logits)]
        rows.append(row)
        print(f"{net:15s} logit {row['logit'][0]:+.4g}  LRP-0 sum/logit {row['lrp0_ratio']}  "
              f"epsilon-plus {row['epsilon_plus_ratio']}", flush=True)
    write_result(name, {"size": args.size, "rows": rows}, seed=0, config=vars(args), path=args.out, origin=origin)


if __name__ == "__main__":
    main()
