"""Speed of feature visualisation: optimisation steps per second for a batch of 16 channel
objectives on the 2D reference CNN (PneumoniaMNIST size, 1x28x28), next to the floor: one
forward + backward pass of the same batch through the model (gradient w.r.t. the input).

Every render step costs at least one such pass; the rest is the parameterisation (an inverse
FFT for "fourier"), the random transforms (two resamplings) and the optimiser. The ratio
"floor / step" is the fraction of a step spent in the model.

Usage: python benchmarks/featurevis.py [--steps 100] [--repeats 3] [--threads 1]
Times are the best of ``--repeats`` runs (the machine may be shared). Stores them through
``_runner.write_result`` (``benchmarks/results/featurevis.json``).
"""

from __future__ import annotations

import argparse
import time

import torch
from _runner import options, provenance, write_result

from medlens import featurevis as fv
from medlens.models import CNN


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options(parser, "featurevis", seed=None)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    origin = provenance(seed=0, config=vars(args))
    torch.manual_seed(0)
    model = CNN(2, 1, 2, widths=(16, 32, 64), input_shape=(1, 28, 28)).eval()
    shape = (args.batch, 1, 28, 28)
    print(f"2D reference CNN (16, 32, 64), batch {args.batch} x 1x28x28, {torch.get_num_threads()} thread(s), "
          f"best of {args.repeats}, {args.steps} steps per run")

    x = torch.rand(shape, requires_grad=True)

    def floor() -> None:
        for _ in range(args.steps):
            torch.autograd.grad(model(x).sum(), x)

    floor(), fv.render(model, fv.channels("features.block1.act", range(args.batch)), shape, steps=5)  # warm up
    rows = []
    floor_s = float("inf")
    for layer in ("features.block1.act", "features.block3.act"):
        objective = fv.channels(layer, range(args.batch))
        for param, transforms in (("fourier", "default"), ("pixel", "default"), ("pixel", "none")):
            # the floor is re-measured next to every configuration; its best is kept (shared machine)
            floor_s = min(floor_s, best_of(args.repeats, floor) / args.steps)
            seconds = best_of(args.repeats, lambda o=objective, p=param, t=transforms: fv.render(
                model, o, shape, steps=args.steps, param=p, transforms=t))
            rows.append({"layer": layer, "param": param, "transforms": transforms, "step_s": seconds / args.steps})
    print(f"{'floor: one forward+backward pass of the batch':66s} {1 / floor_s:8.1f} passes/s {floor_s * 1e3:7.2f} ms")
    for row in rows:
        row["model_pass_share"] = floor_s / row["step_s"]
        label = f"render {args.batch} channels of {row['layer']}, {row['param']}, {row['transforms']} transforms"
        print(f"{label:66s} {1 / row['step_s']:8.1f} steps/s  {row['step_s'] * 1e3:7.2f} ms  "
              f"(model pass = {row['model_pass_share']:.0%} of a step)")
    numbers = {"batch": args.batch, "steps": args.steps, "repeats": args.repeats, "floor_s": floor_s, "rows": rows}
    print(f"stored {write_result('featurevis', numbers, seed=0, config=vars(args), path=args.out, origin=origin)}")


if __name__ == "__main__":
    main()
