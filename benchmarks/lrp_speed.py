"""One LRP pass against one gradient pass and against Zennit's LRP, on the same models.

Models: a VGG-like 2D CNN (1x64x64), MONAI's DenseNet-121 (2D, 224^2) and ResNet-18 (3D, 64^3),
one input each, composite ``epsilon-plus`` for both libraries. Each timing is the best of
``--repeats`` wall-clock runs (after one warm-up). Zennit's LRP runs with its
SequentialMergeBatchNorm canonizer where that canonizer accepts the model (it merges batch
norms by module order and fails on DenseNet's pre-activation layout), else without it; Zennit
cannot see MONAI ResNet's ``out += residual``, so its ResNet map is not the same LRP (the time
is still one LRP pass).

    PYTHONPATH=. .venv/bin/python benchmarks/lrp_speed.py [--threads 2] [--repeats 3]

Writes ``benchmarks/results/lrp_speed.json`` (with the git commit, the command and threads).
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import pathlib
import platform
import subprocess
import sys
import time
import types
import warnings

import torch
from torch import nn


def _zennit():
    """Import zennit with a stub torchvision (zennit imports it only for its ResNet canonizers)."""
    tv, models, resnet = (types.ModuleType(n) for n in ("torchvision", "torchvision.models", "torchvision.models.resnet"))
    resnet.Bottleneck = type("Bottleneck", (nn.Module,), {})
    resnet.BasicBlock = type("BasicBlock", (nn.Module,), {})
    tv.models, models.resnet = models, resnet
    stub = {"torchvision": tv, "torchvision.models": models, "torchvision.models.resnet": resnet}
    saved = {k: sys.modules.get(k) for k in stub}
    sys.modules.update(stub)
    try:
        return importlib.import_module("zennit")
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _vgg() -> nn.Module:
    torch.manual_seed(0)
    layers, cin = [], 1
    for cout in (16, 32, 64):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU(),
                   nn.MaxPool2d(2)]
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(256, 64), nn.ReLU(),
                         nn.Linear(64, 2)).eval()


def _models():
    from monai.networks import nets

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield "VGG-like 2D", _vgg(), (1, 1, 64, 64)
        yield "DenseNet-121 2D", nets.DenseNet121(spatial_dims=2, in_channels=1, out_channels=2).eval(), (1, 1, 224, 224)
        yield "ResNet-18 3D", nets.resnet18(spatial_dims=3, n_input_channels=1, num_classes=2).eval(), (1, 1, 64, 64, 64)


def _best(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _zennit_lrp(zennit, model, x, canonize: bool):
    canonizers = [zennit.canonizers.SequentialMergeBatchNorm()] if canonize else None
    composite = zennit.composites.EpsilonPlus(canonizers=canonizers)
    with composite.context(model) as modified:
        inp = x.clone().requires_grad_(True)
        out = modified(inp)
        grad_out = torch.zeros_like(out)
        grad_out[:, 0] = out[:, 0].detach()
        (rel,) = torch.autograd.grad(out, inp, grad_outputs=grad_out)
    return rel


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="benchmarks/results/lrp_speed.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    import medlens

    zennit = _zennit()
    rows = []
    for name, model, shape in _models():
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        t_grad = _best(lambda: medlens.explain(model, x, target=0, method="gradient"), args.repeats)
        t_lrp = _best(lambda: medlens.explain(model, x, target=0, method="lrp"), args.repeats)
        canonized = True
        try:
            _zennit_lrp(zennit, copy.deepcopy(model), x, True)  # a failed merge can leave the model changed
        except Exception as err:  # noqa: BLE001  (Zennit's merge by module order does not fit)
            canonized, note = False, f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
        t_zen = _best(lambda: _zennit_lrp(zennit, model, x, canonized), args.repeats)
        row = {"model": name, "input": list(shape), "gradient_s": t_grad, "lrp_s": t_lrp, "zennit_lrp_s": t_zen,
               "lrp_over_gradient": t_lrp / t_grad, "lrp_over_zennit": t_lrp / t_zen,
               "zennit_batchnorm_canonizer": canonized}
        if not canonized:
            row["zennit_note"] = note
        rows.append(row)
        print(f"{name:16s} gradient {t_grad:7.3f} s  lrp {t_lrp:7.3f} s  zennit {t_zen:7.3f} s  "
              f"lrp/gradient {t_lrp / t_grad:5.2f}  lrp/zennit {t_lrp / t_zen:5.2f}", flush=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {"command": " ".join([pathlib.Path(sys.executable).name] + sys.argv), "commit": commit,
              "threads": args.threads, "repeats": args.repeats, "torch": torch.__version__,
              "python": platform.python_version(), "composite": "epsilon-plus", "rows": rows}
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
