"""Chunks side by side against one chunk at a time, and the incremental chain's reach (issue 23).

Two A/B comparisons, each in one process, the two arms taking turns ``--repeats`` times (best kept),
at two torch threads, on a quiet machine and beside ``--load`` single-threaded busy processes:

* ``side_by_side``: occlusion (coarse-to-fine, ``--windows`` windows) on MONAI's ResNet-18 3D at 64^3
  and RISE (``--masks`` masks) on DenseNet-121 2D at 160^2, with the chunks evaluated side by side,
  one torch thread each (:mod:`medlens.core.chunk_workers`, the default), against one chunk at a
  time on two intra-op threads;
* ``chain_reach``: coarse-to-fine occlusion with the incremental chain stopping where a window's
  change covers more than 50% of a layer (the former rule) against 80% (``MAX_CHANGED_FRACTION``),
  on ResNet-18 3D (where the 80% was chosen) and DenseNet-121 3D (held out).

    python benchmarks/side_by_side.py --threads 2 --loads 0,1 [--repeats 2]

Maps of the two arms must agree to rounding (``max_abs_diff``). Stores
``benchmarks/results/side_by_side.json`` through ``_runner.write_result`` after each row.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import time
import warnings

from _runner import busy_loop, load_now, options, provenance, write_result


def _network(name: str):
    import torch
    from monai.networks import nets

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "resnet18_3d":
            return nets.resnet18(spatial_dims=3, n_input_channels=1, num_classes=2).eval(), (1, 1, 64, 64, 64)
        if name == "densenet121_3d":
            return nets.DenseNet121(spatial_dims=3, in_channels=1, out_channels=2).eval(), (1, 1, 64, 64, 64)
        return nets.DenseNet121(spatial_dims=2, in_channels=1, out_channels=2).eval(), (1, 1, 160, 160)


def _ab(arms, repeats):
    """Each arm ``(name, run)`` in turn, ``repeats`` times: the best seconds and the last map per arm."""
    times, maps = {name: [] for name, _ in arms}, {}
    for _ in range(repeats):
        for name, run in arms:
            start = time.perf_counter()
            maps[name] = run()
            times[name].append(time.perf_counter() - start)
    return times, maps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options(parser, "side_by_side", seed=None, threads=2)
    parser.add_argument("--loads", default="0,1", help="busy processes beside each comparison")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--windows", type=int, default=100, help="coarse-to-fine occlusion windows")
    parser.add_argument("--masks", type=int, default=400, help="RISE masks")
    args = parser.parse_args()

    import torch

    import medlens
    from medlens.attribution import incremental
    from medlens.attribution.coarse_to_fine import coarse_to_fine_occlusion
    from medlens.core import chunk_workers
    from medlens.core.targets import to_target

    torch.set_num_threads(args.threads)
    origin = provenance(seed=0, config=vars(args))
    side_by_side = chunk_workers.worker_count
    one_at_a_time = lambda n, device: 1  # noqa: E731

    def with_workers(count, run):
        def arm():
            chunk_workers.worker_count = count
            try:
                return run()
            finally:
                chunk_workers.worker_count = side_by_side
        return arm

    def with_reach(fraction, run):
        def arm():
            before, incremental.MAX_CHANGED_FRACTION = incremental.MAX_CHANGED_FRACTION, fraction
            try:
                return run()
            finally:
                incremental.MAX_CHANGED_FRACTION = before
        return arm

    def occlusion_of(model, x):
        return lambda: coarse_to_fine_occlusion(model, x, to_target(1, None, 1), evaluations=args.windows)[0]

    comparisons = []
    for name in ("resnet18_3d", "densenet121_2d"):
        model, shape = _network(name)
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        run = occlusion_of(model, x) if name == "resnet18_3d" else (
            lambda model=model, x=x: medlens.explain(model, x, 1, "rise", n_masks=args.masks, seed=0).values)
        what = f"occlusion, {args.windows} coarse-to-fine windows" if name == "resnet18_3d" else f"RISE, {args.masks} masks"
        comparisons.append(("side_by_side", name, what, [("side by side", with_workers(side_by_side, run)),
                                                          ("one at a time", with_workers(one_at_a_time, run))]))
    for name in ("resnet18_3d", "densenet121_3d"):
        model, shape = _network(name)
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(1))
        run = occlusion_of(model, x)
        comparisons.append(("chain_reach", name, f"occlusion, {args.windows} coarse-to-fine windows"
                            + (" (design)" if name == "resnet18_3d" else " (held out)"),
                            [("80%", with_reach(0.8, run)), ("50%", with_reach(0.5, run))]))

    result = {"rows": []}
    ctx = mp.get_context("spawn")
    for load in map(int, args.loads.split(",")):
        busy = [ctx.Process(target=busy_loop, daemon=True) for _ in range(load)]
        for p in busy:
            p.start()
        try:
            for kind, name, what, arms in comparisons:
                times, maps = _ab(arms, args.repeats)
                (a, _), (b, _) = arms
                best = {k: min(v) for k, v in times.items()}
                row = {"comparison": kind, "model": name, "task": what, "load_processes": load, "arms": [a, b],
                       "seconds": best, "ratio": best[a] / best[b], "all_times_s": times,
                       "max_abs_diff": float((maps[a] - maps[b]).abs().max()), "load": load_now()}
                result["rows"].append(row)
                print(f"{kind:13s} {name:15s} load {load}: {a} {best[a]:6.2f} s, {b} {best[b]:6.2f} s, "
                      f"ratio {row['ratio']:.2f}, max |diff| {row['max_abs_diff']:.1e}", flush=True)
                write_result("side_by_side", result, seed=0, path=args.out, origin=origin)
        finally:
            for p in busy:
                p.terminate()


if __name__ == "__main__":
    main()
