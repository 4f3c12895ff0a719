"""3D known-answer benchmark (issue 23): quality per second of every method on third-party 3D networks.

Each network (MONAI ResNet-18 3D, DenseNet-121 3D, a UNet whose target is the sum of class 1 inside
a box) is wrapped so that only a known box of the volume can affect its output: the input is
multiplied by the box's indicator before the network sees it. The right map therefore lies in
the box; the figure of merit is the share of the map's top 1% of locations (largest
``|value - median|``, summed over channels) that lie inside it, against wall time, model
evaluations (rows the network is run on, forward or gradient) and peak memory, at the defaults
and along the budget curve (the cost rule's budget scaled by ``--budgets``).

The box is ``--region`` (default 3/8) of each side, starting at 0.3 of each side (not aligned
with any power-of-two grid): 24^3 of 64^3 (5.3% of the voxels), 36^3 of 96^3.

    OMP_NUM_THREADS=1 python benchmarks/volumes_known_answer.py --threads 2 [--sizes 64,96]
        [--models resnet18,densenet121,unet] [--methods a,b] [--budgets 1] [--limit 300]
    OMP_NUM_THREADS=1 python benchmarks/volumes_known_answer.py --threads 1 --quick   # results/volumes_known_answer-quick.json

Each (model, size, method, budget) runs in its own process (peak RSS is that process's high-water
mark above its level before the call). Stores ``benchmarks/results/volumes_known_answer.json`` through
``_runner.write_result`` after each row.
Quality and evaluation counts do not depend on the machine's load; wall time does: each row also
stores ``forward_s``, one forward pass of the model in the same process just before the run (best
of 3), so that ``seconds / (evaluations * forward_s)`` compares rows taken under different loads.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
import warnings

from _runner import load_now, options, provenance, write_result

REGION_START = 0.3
METHODS_3D = ("gradient", "grad_x_input", "integrated_gradients", "smoothgrad", "gradcam", "gradcam_pp",
              "fastcam", "occlusion", "rise", "lrp", "crp")
#: The quick configuration (seconds): the slow test re-runs it against its stored file (the
#: quality numbers and evaluation counts do not depend on the machine's load).
QUICK = {"sizes": "32", "models": "resnet18", "methods": "gradient,gradcam", "budgets": "1"}


def region_slices(size: int, fraction: float, at: float = REGION_START) -> tuple[slice, ...]:
    start, width = round(at * size), round(fraction * size)
    return (slice(start, start + width),) * 3


def build(name: str, size: int, fraction: float, at: float = REGION_START):
    import torch
    from monai.networks import nets

    from medlens.core.targets import ReducedOutput

    torch.manual_seed(0)
    box = region_slices(size, fraction, at)
    mask = torch.zeros(1, 1, size, size, size)
    mask[(0, 0, *box)] = 1

    class RegionOnly(torch.nn.Module):
        """Only the box reaches the network: everything outside is replaced by 0."""

        def __init__(self, net):
            super().__init__()
            self.net = net
            self.register_buffer("gate", mask)

        def forward(self, x):
            return self.net(x * self.gate)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "resnet18":
            model = RegionOnly(nets.resnet18(spatial_dims=3, n_input_channels=1, num_classes=2))
        elif name == "densenet121":
            model = RegionOnly(nets.DenseNet121(spatial_dims=3, in_channels=1, out_channels=2))
        elif name == "unet":
            unet = nets.UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=(8, 16, 32, 64),
                             strides=(2, 2, 2), num_res_units=1)
            model = ReducedOutput(RegionOnly(unet), channel=1, mask=mask[0, 0])
        else:
            raise SystemExit(f"unknown model {name}")
    return model.eval(), mask[0, 0].bool()


def top_share(values, inside, fraction: float = 0.01) -> float:
    import torch

    v = values.detach().double()[0].sum(0) if values.ndim == 5 else values.detach().double()
    v = (v - v.median()).abs().flatten()
    k = max(1, int(fraction * v.numel()))
    # ties broken at random (seeded) rather than by position, so flat maps score their chance share
    order = torch.randperm(v.numel(), generator=torch.Generator().manual_seed(0))
    top = order[v[order].topk(k).indices]
    return float(inside.flatten()[top].double().mean())


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def child(name, size, fraction, method, budget_scale, threads, queue, at=REGION_START):
    import torch

    from medlens.attribution.explain import explain
    from medlens.core import cost

    torch.set_num_threads(threads)
    model, inside = build(name, size, fraction, at)
    x = torch.randn(1, 1, size, size, size, generator=torch.Generator().manual_seed(1))
    cost.FLOP_BUDGET = cost.FLOP_BUDGET * budget_scale
    target = 0 if name == "unet" else 1
    rows = [0]
    net = model.model.net if name == "unet" else model.net
    handle = net.register_forward_pre_hook(lambda m, args: rows.__setitem__(0, rows[0] + len(args[0])))
    with torch.no_grad():  # one forward pass, best of 3, in this process: the load's yardstick
        forward_s = min(_timed(lambda: model(x)) for _ in range(3))
    rows[0] = 0
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    a = explain(model, x, target, method)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    handle.remove()
    settings = {k: v for k, v in a.params.items() if k in ("n_masks", "n_samples", "n_steps", "window", "stride",
                                                             "strategy", "windows", "finest_window", "layer")}
    queue.put({"seconds": seconds, "evaluations": rows[0], "forward_s": forward_s, "peak_mib": (peak - before) / 1024,
               "top1_inside": top_share(a.values, inside), "settings": {k: repr(v) for k, v in settings.items()},
               "note": a.extras.get("note"), "load": load_now()})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options(parser, "volumes_known_answer", seed=None, threads=2)
    parser.add_argument("--sizes", default="64,96")
    parser.add_argument("--models", default="resnet18,densenet121,unet")
    parser.add_argument("--methods", default=",".join(METHODS_3D))
    parser.add_argument("--budgets", default="1", help="comma-separated scales of the cost rule's budget, e.g. 0.25,0.5,1,2,4")
    parser.add_argument("--region", type=float, default=3 / 8)
    parser.add_argument("--region-start", type=float, default=REGION_START,
                        help="where the box starts, as a share of each side (default 0.3); another position gives a "
                             "box to design a rule on, kept apart from the default box the rule is accepted on")
    parser.add_argument("--limit", type=float, default=300.0, help="wall-clock limit per run (s)")
    parser.add_argument("--quick", action="store_true", help=f"the quick configuration {QUICK}")
    args = parser.parse_args()
    if args.quick:
        vars(args).update(QUICK)
    import torch

    torch.set_num_threads(args.threads)  # as each run's process does
    ctx = mp.get_context("spawn")
    result_name = "volumes_known_answer" + ("-quick" if args.quick else "")
    origin = provenance(seed=0, config=vars(args))  # seeded weights (0), input (1) and tie-breaking (0), fixed here
    results = {"rows": []}
    print(f"{'model':12s} {'size':>4s} {'method':22s} {'budget':>6s} {'top1%in':>8s} {'evals':>6s} {'wall s':>7s} {'peak MiB':>8s}  settings")
    for name in args.models.split(","):
        for size in map(int, args.sizes.split(",")):
            for method in args.methods.split(","):
                for scale in map(float, args.budgets.split(",")):
                    queue = ctx.Queue()
                    proc = ctx.Process(target=child, args=(name, size, args.region, method, scale, args.threads, queue,
                                                                     args.region_start))
                    proc.start()
                    proc.join(args.limit)
                    if proc.is_alive():
                        proc.terminate()
                        proc.join()
                        row = {"note": f"over {args.limit:.0f} s"}
                    else:
                        row = queue.get() if not queue.empty() else {"note": "failed"}
                    row.update(model=name, size=size, method=method, budget_scale=scale, region=args.region,
                               region_start=args.region_start)
                    results["rows"].append(row)
                    if "top1_inside" in row:
                        print(f"{name:12s} {size:4d} {method:22s} {scale:6.2f} {row['top1_inside']:8.3f} {row['evaluations']:6d} "
                              f"{row['seconds']:7.1f} {row['peak_mib']:8.0f}  {row['settings']}", flush=True)
                    else:
                        print(f"{name:12s} {size:4d} {method:22s} {scale:6.2f} {row['note']}", flush=True)
                    if row.get("note") and "top1_inside" in row:
                        print(f"    note: {row['note']}", flush=True)
                    write_result(result_name, results, seed=0, path=args.out, origin=origin)


if __name__ == "__main__":
    main()
