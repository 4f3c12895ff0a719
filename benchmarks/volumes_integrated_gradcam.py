"""Integrated Grad-CAM on the 3D known answer (issue 23): does an activation-difference CAM meet the bar?

Sattarzadeh et al., "Integrated Grad-CAM" (ICASSP 2021): instead of Grad-CAM's ``sum_k w_k A_k(x)``
with ``w_k`` the spatial mean of the layer gradient at ``x``, weigh the activation difference
``A_k(x) - A_k(x')`` from a reference input ``x'`` (here 0) by the spatial mean of the layer
gradient averaged along the straight path ``x' + alpha (x - x')`` (``--steps`` midpoints), then
ReLU and upsample. Same networks, volume and region as ``volumes_known_answer.py`` (64^3, region
24^3, random-weight MONAI ResNet-18 3D and DenseNet-121 3D); every listed layer is read from the
same path (one forward and backward pass per step for all layers). Plain Grad-CAM at each layer is
listed beside it (the same passes at ``alpha = 1``).

This is a measurement, not a registered method: it decides whether the variant is worth adding.

    OMP_NUM_THREADS=1 python benchmarks/volumes_integrated_gradcam.py --threads 2 [--steps 16]

Stores ``benchmarks/results/volumes_integrated_gradcam.json`` through ``_runner.write_result``.
"""

from __future__ import annotations

import argparse
import time

from _runner import load_now, options, provenance, write_result
from volumes_known_answer import build, top_share

LAYERS = {"resnet18": ("act", "layer1", "layer2", "layer3", "layer4"),
          "densenet121": ("features.relu0", "features.transition1.relu", "features.transition2.relu",
                          "features.transition3.relu", "class_layers.relu")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options(parser, "volumes_integrated_gradcam", seed=None, threads=2)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--models", default="resnet18,densenet121")
    args = parser.parse_args()

    import torch
    import torch.nn.functional as F

    torch.set_num_threads(args.threads)
    origin = provenance(seed=0, config=vars(args))  # seeded weights (0) and input (1), fixed here
    result = {"size": 64, "region": 3 / 8, "steps": args.steps, "rows": []}
    for name in args.models.split(","):
        model, inside = build(name, 64, 3 / 8)
        for m in model.modules():
            if hasattr(m, "inplace"):
                m.inplace = False  # the hooked outputs must stay as computed
        x = torch.randn(1, 1, 64, 64, 64, generator=torch.Generator().manual_seed(1))
        modules = {layer: model.net.get_submodule(layer) for layer in LAYERS[name]}
        acts: dict = {}
        handles = [m.register_forward_hook(lambda mod, inp, out, key=key: acts.__setitem__(key, out))
                   for key, m in modules.items()]

        def grads_at(alpha: float):
            acts.clear()
            score = model(alpha * x)[:, 1].sum()
            keys = list(modules)
            return {k: a.detach() for k, a in acts.items()}, dict(zip(keys, torch.autograd.grad(score, [acts[k] for k in keys])))

        start = time.perf_counter()
        with torch.no_grad():
            acts.clear()
            model(0 * x)
            reference = {k: a.detach().clone() for k, a in acts.items()}
        top, top_grads = grads_at(1.0)
        mean_grad = {k: torch.zeros_like(g) for k, g in top_grads.items()}
        for i in range(args.steps):
            _, g = grads_at((i + 0.5) / args.steps)
            for k in g:
                mean_grad[k] += g[k] / args.steps
        seconds = time.perf_counter() - start
        for h in handles:
            h.remove()
        for k in modules:
            dims = tuple(range(2, top[k].ndim))
            igc = F.relu(((top[k] - reference[k]) * mean_grad[k].mean(dims, keepdim=True)).sum(1, keepdim=True))
            cam = F.relu((top[k] * top_grads[k].mean(dims, keepdim=True)).sum(1, keepdim=True))
            up = {label: F.interpolate(m, size=(64,) * 3, mode="trilinear", align_corners=False)
                  for label, m in (("integrated_gradcam", igc), ("gradcam", cam))}
            row = {"model": name, "layer": k, "grid": list(top[k].shape[2:]),
                   "integrated_gradcam_top1_inside": top_share(up["integrated_gradcam"], inside),
                   "gradcam_top1_inside": top_share(up["gradcam"], inside),
                   "seconds_all_layers": seconds, "passes": args.steps + 2, "load": load_now()}
            result["rows"].append(row)
            print(f"{name:12s} {k:30s} grid {'x'.join(map(str, row['grid'])):8s} IGC {row['integrated_gradcam_top1_inside']:.3f} "
                  f"Grad-CAM {row['gradcam_top1_inside']:.3f}  ({seconds:.1f} s for all layers)", flush=True)
        write_result("volumes_integrated_gradcam", result, seed=0, path=args.out, origin=origin)


if __name__ == "__main__":
    main()
