"""Every method at its default settings on MONAI's DenseNet-121 (2D, 160^2 and 224^2) and ResNet-18 (3D, 64^3).

The bar of issue 11: each method under a minute per case on two CPU cores. Each method runs in
its own child process with a wall-clock limit (``--limit``, default 75 s); a method that runs
past it is reported as such with the model-evaluation count it needed, which, with the measured
cost of one forward and one forward+backward pass, says how far it is from the bar.

    .venv/bin/python benchmarks/third_party_speed.py [--threads 2] [--limit 75] [--only 2d|2d160|3d] [--methods a,b]
        [--load 1] [--batch-size N] [--out FILE]

``--load N`` runs N single-threaded busy processes (a matrix product in a loop) beside the
whole run, so that "the machine otherwise busy with one other process" is a stated, repeatable
load rather than whatever else happens to run; the load averages are stored per method either way.
``--batch-size N`` fixes the engine's inputs per chunk (default: its own choice, as a user gets it),
e.g. to time occlusion's windows in the engine's former chunks of two beside the default eight.

The counts of RISE, occlusion, SmoothGrad and integrated gradients are the library's defaults,
chosen from the model's counted cost (``medlens/core/cost.py``); the table shows them.

Writes ``benchmarks/results/third_party_speed.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import pathlib
import sys
import time
import warnings

SETTINGS = ("n_masks", "n_samples", "n_steps", "window", "stride", "windows")  # the cost-dependent defaults
MODELS = {
    "2d160": ("DenseNet-121 2D", (1, 1, 160, 160)),
    "2d": ("DenseNet-121 2D", (1, 1, 224, 224)),
    "3d": ("ResNet-18 3D", (1, 1, 64, 64, 64)),
}


def _build(key: str):
    import torch
    from monai.networks import nets

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if key.startswith("2d"):
            return nets.DenseNet121(spatial_dims=2, in_channels=1, out_channels=2).eval()
        return nets.resnet18(spatial_dims=3, n_input_channels=1, num_classes=2).eval()


def _child(key: str, method: str, threads: int, queue: "mp.Queue", batch_size: int | None = None) -> None:
    import torch

    from medlens.attribution.explain import explain

    torch.set_num_threads(threads)
    model = _build(key)
    x = torch.randn(*MODELS[key][1], generator=torch.Generator().manual_seed(1))
    start = time.perf_counter()
    a = explain(model, x, 1, method, **({"batch_size": batch_size} if batch_size else {}))
    seconds = time.perf_counter() - start
    settings = {k: a.params[k] for k in SETTINGS if a.params.get(k) is not None}
    queue.put({"seconds": seconds, "settings": settings, "params": {k: repr(v) for k, v in a.params.items()}})


def _costs(key: str, threads: int) -> dict[str, float]:
    import torch

    torch.set_num_threads(threads)
    model = _build(key)
    x = torch.randn(*MODELS[key][1])
    with torch.no_grad():
        model(x)
        t = time.perf_counter()
        model(x)
        fwd = time.perf_counter() - t
    xg = x.clone().requires_grad_(True)
    t = time.perf_counter()
    model(xg)[0, 1].backward()
    fwd_bwd = time.perf_counter() - t
    from medlens.core.cost import forward_flops

    return {"forward_s": fwd, "forward_backward_s": fwd_bwd, "forward_gflop": forward_flops(model, x) / 1e9}


def main() -> None:
    from medlens.attribution.explain import methods

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=float, default=75.0)
    parser.add_argument("--only", choices=sorted(MODELS), default=None)
    parser.add_argument("--methods", default=None, help="comma-separated subset of the methods")
    parser.add_argument("--load", type=int, default=0, help="single-threaded busy processes run beside the methods")
    parser.add_argument("--batch-size", type=int, default=None,
                        help="inputs per engine chunk (default: the engine's choice, as a user gets it)")
    parser.add_argument("--out", default=None, help="where to store the numbers (default benchmarks/results/third_party_speed.json)")
    args = parser.parse_args()
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
    from benchmarks._runner import busy_loop, provenance, write_result

    ctx = mp.get_context("spawn")
    loaders = [ctx.Process(target=busy_loop, daemon=True) for _ in range(args.load)]
    for proc in loaders:
        proc.start()

    origin = provenance(seed=0, config={"threads": args.threads, "limit_s": args.limit, "only": args.only,
                                        "methods": args.methods, "load_processes": args.load,
                                        "batch_size": args.batch_size})
    results = {}
    for key in [args.only] if args.only else list(MODELS):
        name, shape = MODELS[key]
        costs = _costs(key, args.threads)
        print(f"{name} {shape}: {costs['forward_gflop']:.1f} GFLOP per forward pass (counted); "
              f"forward {costs['forward_s']:.2f} s, forward+backward {costs['forward_backward_s']:.2f} s")
        rows = {}
        for method in args.methods.split(",") if args.methods else methods():
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(key, method, args.threads, queue, args.batch_size))
            start = time.perf_counter()
            proc.start()
            proc.join(args.limit)
            if proc.is_alive():
                proc.terminate()
                proc.join()
                rows[method] = {"seconds": None, "note": f"over {args.limit:.0f} s"}
            else:
                rows[method] = queue.get() if not queue.empty() else {"seconds": None, "note": "failed"}
            wall = time.perf_counter() - start
            rows[method]["load_after"] = [round(v, 2) for v in os.getloadavg()]  # a busy machine's times are not quiet ones
            shown = f"{rows[method]['seconds']:.1f} s" if rows[method]["seconds"] is not None else rows[method]["note"]
            verdict = "PASS" if rows[method]["seconds"] is not None and rows[method]["seconds"] < 60 else "MISS"
            settings = ", ".join(f"{k}={v}" for k, v in rows[method].get("settings", {}).items())
            print(f"  {method:22s} {shown:>12s}  {verdict}  (process {wall:.1f} s) {settings}", flush=True)
        results[key] = {"model": name, "shape": list(shape), **costs, "methods": rows}
    for proc in loaders:
        proc.terminate()
    print("stored", write_result("third_party_speed", results, seed=0, origin=origin, path=args.out))


if __name__ == "__main__":
    main()
