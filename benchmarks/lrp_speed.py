"""One LRP pass against one gradient pass and against Zennit's LRP, on the same models (issue 24).

Models, one input each, at the sizes they are used at: a VGG-like 2D CNN (1x224x224; the
builder of the LRP tests, ``tests/attribution/lrp_models.vgg``, with wider layers), MONAI's
DenseNet-121 (2D, 1x224x224) and ResNet-18 (3D, 1x64x64x64); every named composite
(``--composites``) for both libraries (Zennit has no ``epsilon`` composite). Each timing is the
best of ``--repeats`` runs after one warm-up, and the runs are interleaved (gradient, then each
LRP, then each Zennit LRP, then again) so that the load of other users of a shared machine falls
on all of them alike. Two clocks: wall time, and the CPU time of the process (``time.process_time``:
what the pass itself computed, less sensitive to other processes holding the cores).

Zennit's LRP runs with its SequentialMergeBatchNorm canonizer where that canonizer accepts the
model (it merges batch norms by module order and fails on DenseNet's pre-activation layout),
else without it; Zennit cannot see MONAI ResNet's ``out += residual``, so its ResNet map is not
the same LRP (the time is still one LRP pass).

    python benchmarks/lrp_speed.py [--threads 1] [--repeats 5] [--models VGG,DenseNet]

Stores ``benchmarks/results/lrp_speed.json`` through ``benchmarks/_runner.write_result``.

``--table monai`` instead times every LRP composite and transformer method once, at their
defaults, on MONAI's networks at their usual sizes (DenseNet-121 2D at 224^2, ResNet-18 3D at
64^3, ViT-B/16 2D at 224^2 and 3D at 96^3, UNETR at 96^3 with a region target: the summed
foreground logit inside a 32^3 cube), checks that each map is finite, non-zero and leaves no
hook, and stores ``benchmarks/results/lrp_monai_defaults.json``.
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _runner import provenance, write_result  # noqa: E402

ZENNIT_COMPOSITES = ("epsilon-plus", "epsilon-alpha2-beta1", "epsilon-plus-flat", "epsilon-alpha2-beta1-flat",
                     "epsilon-gamma-box")
BOUNDS = {"low": -4.0, "high": 4.0}  # of z^B in epsilon-gamma-box, for both libraries


def _models():
    from monai.networks import nets

    from tests.attribution.lrp_models import vgg

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield "VGG-like 2D", vgg(2, classes=2, widths=(32, 64, 128, 128), hidden=64, double=False), (1, 1, 224, 224)
        torch.manual_seed(0)
        yield "DenseNet-121 2D", nets.DenseNet121(spatial_dims=2, in_channels=1, out_channels=2).eval(), (1, 1, 224, 224)
        torch.manual_seed(0)
        yield "ResNet-18 3D", nets.resnet18(spatial_dims=3, n_input_channels=1, num_classes=2).eval(), (1, 1, 64, 64, 64)


def best_interleaved(fns: dict, repeats: int) -> dict:
    """Best wall-clock and best CPU time of each function, the functions taking turns
    ``repeats`` times after one warm-up each: ``{name: (wall_s, cpu_s)}``."""
    for fn in fns.values():
        fn()
    wall: dict = {k: [] for k in fns}
    cpu: dict = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            c0, t0 = time.process_time(), time.perf_counter()
            fn()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return {k: (min(wall[k]), min(cpu[k])) for k in fns}


def _zennit_fn(zennit, model, x, canonize: bool, name: str):
    from tests.attribution.lrp_models import zennit_composite, zennit_lrp

    return lambda: zennit_lrp(model, x, [0], zennit_composite(zennit, name, canonize, **BOUNDS))


def speed_table(args) -> dict:
    import medlens
    from tests.attribution.lrp_models import load_zennit

    zennit = load_zennit()
    if zennit is None:
        raise SystemExit("zennit is not installed: pip install --no-deps zennit")
    composites = [c for c in args.composites.split(",") if c]
    wanted = [m for m in args.models.split(",") if m]
    rows = []
    for name, model, shape in _models():
        if wanted and not any(w in name for w in wanted):
            continue
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        canonized, note = True, None
        try:  # on a copy: a failed merge can leave the model changed
            _zennit_fn(zennit, copy.deepcopy(model), x, True, "epsilon-plus")()
        except Exception as err:  # noqa: BLE001  (Zennit's merge by module order does not fit)
            canonized, note = False, f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
        fns = {"gradient": lambda: medlens.explain(model, x, target=0, method="gradient")}
        for c in composites:
            options = BOUNDS if c == "epsilon-gamma-box" else {}
            fns[f"lrp:{c}"] = lambda c=c, o=options: medlens.explain(model, x, target=0, method="lrp", composite=c, **o)
        for c in composites:
            if c in ZENNIT_COMPOSITES:
                fns[f"zennit:{c}"] = _zennit_fn(zennit, model, x, canonized, c)
        best = best_interleaved(fns, args.repeats)
        (g_wall, g_cpu) = best["gradient"]
        row = {"model": name, "input": list(shape), "gradient_s": g_wall, "gradient_cpu_s": g_cpu,
               "zennit_batchnorm_canonizer": canonized, "composites": {}}
        if note:
            row["zennit_note"] = note
        for c in composites:
            wall, cpu = best[f"lrp:{c}"]
            entry = {"lrp_s": wall, "lrp_cpu_s": cpu, "lrp_over_gradient": wall / g_wall,
                     "lrp_over_gradient_cpu": cpu / g_cpu}
            if f"zennit:{c}" in best:
                z_wall, z_cpu = best[f"zennit:{c}"]
                entry.update(zennit_s=z_wall, zennit_cpu_s=z_cpu, zennit_over_gradient=z_wall / g_wall,
                             zennit_over_gradient_cpu=z_cpu / g_cpu)
            row["composites"][c] = entry
            zen = f"  zennit/gradient {entry['zennit_over_gradient']:5.2f}" if "zennit_s" in entry else ""
            print(f"{name:16s} {c:26s} gradient {g_wall:7.3f} s  lrp {wall:7.3f} s  lrp/gradient "
                  f"{entry['lrp_over_gradient']:5.2f} (cpu {entry['lrp_over_gradient_cpu']:5.2f}){zen}", flush=True)
        rows.append(row)
    return {"repeats": args.repeats, "load_average_at_end": list(os.getloadavg()), "rows": rows}


def _monai_defaults():
    from monai.networks import nets

    from medlens.core.targets import ReducedOutput

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        yield "DenseNet-121 2D", nets.DenseNet121(spatial_dims=2, in_channels=1, out_channels=2).eval(), (1, 1, 224, 224)
        torch.manual_seed(0)
        yield "ResNet-18 3D", nets.resnet18(spatial_dims=3, n_input_channels=1, num_classes=2).eval(), (1, 1, 64, 64, 64)
        torch.manual_seed(0)
        yield "ViT-B/16 2D", nets.ViT(1, (224, 224), (16, 16), classification=True, num_classes=2,
                                      spatial_dims=2).eval(), (1, 1, 224, 224)
        torch.manual_seed(0)
        yield "ViT-B/16 3D", nets.ViT(1, (96,) * 3, (16,) * 3, classification=True, num_classes=2,
                                      spatial_dims=3).eval(), (1, 1, 96, 96, 96)
        torch.manual_seed(0)
        unetr = nets.UNETR(1, 2, (96,) * 3, spatial_dims=3).eval()
        mask = torch.zeros((96,) * 3)
        mask[32:64, 32:64, 32:64] = 1
        yield "UNETR 3D (region)", ReducedOutput(unetr, channel=1, mask=mask), (1, 1, 96, 96, 96)


def monai_table(args) -> dict:
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
    return {"slowest_s": max(r["seconds"] for r in rows), "all_finite": all(r["finite"] for r in rows),
            "hooks_left": sum(r["hooks_left"] for r in rows), "rows": rows}


def main() -> int:
    from medlens.attribution.lrp import COMPOSITES

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", default="", help="comma-separated substrings of the model names (default all)")
    parser.add_argument("--composites", default=",".join(COMPOSITES))
    parser.add_argument("--table", choices=("speed", "monai"), default="speed")
    parser.add_argument("--out", default=None, help="result file (default benchmarks/results/<name>.json)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    origin = provenance(seed=0, config=vars(args))  # the tree as the run starts
    name = "lrp_monai_defaults" if args.table == "monai" else "lrp_speed"
    numbers = monai_table(args) if args.table == "monai" else speed_table(args)
    print(f"stored {write_result(name, numbers, seed=0, config=vars(args), path=args.out, origin=origin)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
