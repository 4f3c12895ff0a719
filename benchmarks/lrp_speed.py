"""One LRP pass against one gradient pass and against Zennit's LRP, on the same models.

Models: a VGG-like 2D CNN (1x64x64), MONAI's DenseNet-121 (2D, 224^2) and ResNet-18 (3D, 64^3),
one input each; every named composite (``--composites``) for both libraries (Zennit has no
``epsilon`` composite). Each timing is the best of ``--repeats`` wall-clock runs after one
warm-up, and the runs are interleaved (gradient, then each LRP, then again) so that load from
other users of a shared machine falls on all of them alike. Zennit's LRP runs with its
SequentialMergeBatchNorm canonizer where that canonizer accepts the model (it merges batch
norms by module order and fails on DenseNet's pre-activation layout), else without it; Zennit
cannot see MONAI ResNet's ``out += residual``, so its ResNet map is not the same LRP (the time
is still one LRP pass).

    PYTHONPATH=. .venv/bin/python benchmarks/lrp_speed.py [--threads 2] [--repeats 3] [--models VGG,DenseNet]

Writes ``benchmarks/results/lrp_speed.json`` (with the git commit, the command and threads).

``--table monai`` instead times every LRP composite and transformer method once, at their
defaults, on MONAI's networks at their usual sizes (DenseNet-121 2D at 224^2, ResNet-18 3D at
64^3, ViT-B/16 2D at 224^2 and 3D at 96^3, UNETR at 96^3 with a region target: the summed
foreground logit inside a 32^3 cube), checks that each map is finite, non-zero and leaves no
hook, and writes ``benchmarks/results/lrp_monai_defaults.json``.
"""

from __future__ import annotations

import argparse
import copy
import importlib
import json
import os
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


def _best_interleaved(fns: dict, repeats: int) -> dict:
    """Best wall-clock time of each function, the functions taking turns ``repeats`` times."""
    for fn in fns.values():
        fn()  # warm-up
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: min(v) for k, v in times.items()}


ZENNIT_COMPOSITES = {
    "epsilon-plus": "EpsilonPlus", "epsilon-alpha2-beta1": "EpsilonAlpha2Beta1", "epsilon-plus-flat": "EpsilonPlusFlat",
    "epsilon-alpha2-beta1-flat": "EpsilonAlpha2Beta1Flat", "epsilon-gamma-box": "EpsilonGammaBox",
}


def _zennit_lrp(zennit, model, x, canonize: bool, composite_name: str = "epsilon-plus"):
    canonizers = [zennit.canonizers.SequentialMergeBatchNorm()] if canonize else None
    make = getattr(zennit.composites, ZENNIT_COMPOSITES[composite_name])
    bounds = {"low": -4.0, "high": 4.0} if composite_name == "epsilon-gamma-box" else {}
    composite = make(canonizers=canonizers, **bounds)
    with composite.context(model) as modified:
        inp = x.clone().requires_grad_(True)
        out = modified(inp)
        grad_out = torch.zeros_like(out)
        grad_out[:, 0] = out[:, 0].detach()
        (rel,) = torch.autograd.grad(out, inp, grad_outputs=grad_out)
    return rel


def _monai_defaults():
    from monai.networks import nets

    from medlens.core.targets import ReducedOutput

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield "DenseNet-121 2D", nets.DenseNet121(spatial_dims=2, in_channels=1, out_channels=2).eval(), (1, 1, 224, 224)
        yield "ResNet-18 3D", nets.resnet18(spatial_dims=3, n_input_channels=1, num_classes=2).eval(), (1, 1, 64, 64, 64)
        yield "ViT-B/16 2D", nets.ViT(1, (224, 224), (16, 16), classification=True, num_classes=2,
                                      spatial_dims=2).eval(), (1, 1, 224, 224)
        yield "ViT-B/16 3D", nets.ViT(1, (96,) * 3, (16,) * 3, classification=True, num_classes=2,
                                      spatial_dims=3).eval(), (1, 1, 96, 96, 96)
        unetr = nets.UNETR(1, 2, (96,) * 3, spatial_dims=3).eval()
        mask = torch.zeros((96,) * 3)
        mask[32:64, 32:64, 32:64] = 1
        yield "UNETR 3D (region)", ReducedOutput(unetr, channel=1, mask=mask), (1, 1, 96, 96, 96)


def monai_table(args) -> int:
    """Every LRP composite and transformer method at its defaults on MONAI's networks, timed once."""
    import medlens
    from medlens.attribution.lrp import COMPOSITES
    from medlens.attribution.transformer.attention_maps import has_attention_layers
    from medlens.core.hooks import count_hooks

    rows = []
    for name, model, shape in _monai_defaults():
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        methods = [("gradient", {})] + [("lrp", {"composite": c}) for c in COMPOSITES]
        if has_attention_layers(model):
            methods += [("attention_rollout", {}), ("transformer_attribution", {})]
        for method, options in methods:
            t0 = time.perf_counter()
            values = medlens.explain(model, x, target=0, method=method, **options).values
            seconds = time.perf_counter() - t0
            row = {"model": name, "input": list(shape), "method": method, **options, "seconds": seconds,
                   "finite": bool(torch.isfinite(values).all()), "non_zero": bool(values.abs().sum() > 0),
                   "hooks_left": count_hooks(model), "load_average": os.getloadavg()[0]}
            rows.append(row)
            print(f"{name:18s} {method:24s} {options.get('composite', ''):26s} {seconds:7.2f} s  "
                  f"finite {row['finite']}  hooks left {row['hooks_left']}  load {row['load_average']:.1f}", flush=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {"command": " ".join([pathlib.Path(sys.executable).name] + sys.argv), "commit": commit,
              "threads": args.threads, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "seed": 0,
              "torch": torch.__version__, "python": platform.python_version(),
              "slowest_s": max(r["seconds"] for r in rows), "rows": rows}
    out = args.out if args.out != DEFAULT_OUT else "benchmarks/results/lrp_monai_defaults.json"
    pathlib.Path(out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(out).write_text(json.dumps(result, indent=1))
    print(f"wrote {out}")
    return 0


DEFAULT_OUT = "benchmarks/results/lrp_speed.json"


def main() -> int:
    from medlens.attribution.lrp import COMPOSITES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--models", default="", help="comma-separated substrings of the model names (default all)")
    parser.add_argument("--composites", default=",".join(COMPOSITES))
    parser.add_argument("--table", choices=("speed", "monai"), default="speed")
    parser.add_argument("--out", default=DEFAULT_OUT)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.table == "monai":
        return monai_table(args)
    import medlens

    zennit = _zennit()
    composites = [c for c in args.composites.split(",") if c]
    wanted = [m for m in args.models.split(",") if m]
    rows = []
    for name, model, shape in _models():
        if wanted and not any(w in name for w in wanted):
            continue
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        bounds = {"low": -4.0, "high": 4.0}
        canonized = True
        try:
            _zennit_lrp(zennit, copy.deepcopy(model), x, True)  # a failed merge can leave the model changed
        except Exception as err:  # noqa: BLE001  (Zennit's merge by module order does not fit)
            canonized, note = False, f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
        fns = {"gradient": lambda: medlens.explain(model, x, target=0, method="gradient")}
        for c in composites:
            options = bounds if c == "epsilon-gamma-box" else {}
            fns[f"lrp:{c}"] = lambda c=c, o=options: medlens.explain(model, x, target=0, method="lrp", composite=c, **o)
            if c in ZENNIT_COMPOSITES:
                fns[f"zennit:{c}"] = lambda c=c: _zennit_lrp(zennit, model, x, canonized, c)
        best = _best_interleaved(fns, args.repeats)
        t_grad = best["gradient"]
        row = {"model": name, "input": list(shape), "gradient_s": t_grad, "zennit_batchnorm_canonizer": canonized,
               "composites": {}}
        if not canonized:
            row["zennit_note"] = note
        for c in composites:
            entry = {"lrp_s": best[f"lrp:{c}"], "lrp_over_gradient": best[f"lrp:{c}"] / t_grad}
            if f"zennit:{c}" in best:
                entry.update(zennit_lrp_s=best[f"zennit:{c}"], zennit_over_gradient=best[f"zennit:{c}"] / t_grad,
                             lrp_over_zennit=best[f"lrp:{c}"] / best[f"zennit:{c}"])
            row["composites"][c] = entry
            zen = f"  zennit/gradient {entry['zennit_over_gradient']:5.2f}" if "zennit_lrp_s" in entry else ""
            print(f"{name:16s} {c:26s} gradient {t_grad:7.3f} s  lrp {entry['lrp_s']:7.3f} s  "
                  f"lrp/gradient {entry['lrp_over_gradient']:5.2f}{zen}", flush=True)
        rows.append(row)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    result = {"command": " ".join([pathlib.Path(sys.executable).name] + sys.argv), "commit": commit,
              "threads": args.threads, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "repeats": args.repeats,
              "torch": torch.__version__, "python": platform.python_version(), "seed": 0,
              "load_average_at_end": os.getloadavg(), "rows": rows}
    pathlib.Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
