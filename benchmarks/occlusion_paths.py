"""Occlusion's two paths (issue 23): the default, which picks incremental or plain inference from the
counted cost of each, against the plain path (every occluded input evaluated in full).

Same windows on both paths (``--window``/stride = window), so the maps must agree to rounding;
the ratio ``default / plain`` must never exceed 1 beyond timing noise. Models: the medlens CNN 2D
at 64x64 (the small 2D CNN on which incremental inference used to be 8x slower), the medlens CNN
3D at 64^3, MONAI's ResNet-18 3D at 64^3 (seeded random weights). Each path is timed ``--repeats``
times, alternating, and the best time is kept.

    OMP_NUM_THREADS=1 python benchmarks/occlusion_paths.py --threads 2 [--models cnn2d,cnn3d,resnet18_3d] [--repeats 3]

Stores ``benchmarks/results/occlusion_paths.json`` through ``_runner.write_result`` (commit, command,
threads, the load at the start and per row).
"""

from __future__ import annotations

import argparse
import time
import warnings

from _runner import load_now, options, provenance, write_result

MODELS = {  # name: (builder, input shape, window)
    "cnn2d": ("medlens CNN 2D (16-32-64)", (1, 1, 64, 64), 8),
    "cnn3d": ("medlens CNN 3D (16-32-64)", (1, 1, 64, 64, 64), 16),
    "resnet18_3d": ("MONAI ResNet-18 3D", (1, 1, 64, 64, 64), 16),
}


def build(name):
    import torch

    torch.manual_seed(0)
    if name == "resnet18_3d":
        from monai.networks import nets

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return nets.resnet18(spatial_dims=3, n_input_channels=1, num_classes=2).eval()
    from medlens.models import CNN

    shape = MODELS[name][1]
    return CNN(len(shape) - 2, 1, 2, input_shape=shape[1:]).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options(parser, "occlusion_paths", seed=None, threads=2)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    import torch

    from medlens.attribution import incremental
    from medlens.attribution.explain import explain
    from medlens.core.engine import Budget

    torch.set_num_threads(args.threads)
    origin = provenance(seed=0, config=vars(args))  # seeded models and inputs (seed 0 and 1), fixed here
    result = {"rows": []}
    print(f"{'model':14s} {'window':>6s} {'windows':>7s} {'chain':>5s} {'default s':>9s} {'plain s':>8s} {'ratio':>6s} {'max |diff|':>10s}")
    for name in args.models.split(","):
        model = build(name)
        label, shape, w = MODELS[name]
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        spatial = len(shape) - 2
        chain = incremental.plan(model, x, (w,) * spatial, Budget()) is not None
        times = {"default": [], "plain": []}
        maps = {}
        for _ in range(args.repeats):
            for path, inc in (("default", True), ("plain", False)):
                start = time.perf_counter()
                a = explain(model, x, 1, "occlusion", window=w, stride=w, incremental=inc)
                times[path].append(time.perf_counter() - start)
                maps[path] = a.values
        diff = float((maps["default"] - maps["plain"]).abs().max())
        best = {k: min(v) for k, v in times.items()}
        row = {"model": name, "label": label, "input": list(shape), "window": w, "stride": w,
               "windows": (shape[-1] // w) ** spatial, "incremental_chain_chosen": chain,
               "default_s": best["default"], "plain_s": best["plain"], "ratio_default_over_plain": best["default"] / best["plain"],
               "all_times_s": times, "max_abs_diff": diff, "load": load_now()}
        result["rows"].append(row)
        print(f"{name:14s} {w:6d} {row['windows']:7d} {chain!s:>5s} {best['default']:9.2f} {best['plain']:8.2f} "
              f"{row['ratio_default_over_plain']:6.2f} {diff:10.2e}", flush=True)
        write_result("occlusion_paths", result, seed=0, path=args.out, origin=origin)


if __name__ == "__main__":
    main()
