"""Speed of the batched deletion / insertion metric against the per-image loop most code uses.

    python benchmarks/evaluation.py [--size 64] [--n 16] [--steps 20]

The per-image loop is the RISE reference implementation's shape (one forward pass per curve
point per image). medlens builds the ``n * (steps + 1)`` perturbed inputs lazily inside the
engine, in memory-bounded chunks. Both compute the same numbers (checked here). Stores the times
through ``_runner.write_result`` (``benchmarks/results/evaluation.json``).
"""

from __future__ import annotations

import argparse
import time

import torch
from _runner import options, provenance, quick_name, quick_option, write_result

#: The quick configuration (a second): the check compares the counts and the AUC difference, never a time.
QUICK = {"size": 32, "n": 4, "steps": 5}


def naive_deletion(model, x, saliency, target, steps, substrate):
    aucs = []
    b, c, *spatial = x.shape
    n = saliency[0].numel()
    for i in range(b):
        order = torch.argsort(-saliency[i].reshape(-1), stable=True)
        curve = []
        for k in range(steps + 1):
            count = round(k * n / steps)
            img = x[i].clone().reshape(c, -1)
            img[:, order[:count]] = substrate[i].reshape(c, -1)[:, order[:count]]
            with torch.no_grad():
                curve.append(float(torch.softmax(model(img.reshape(1, c, *spatial)), 1)[0, target[i]]))
        aucs.append(float(torch.trapezoid(torch.tensor(curve), torch.linspace(0, 1, steps + 1))))
    return torch.tensor(aucs)


def main() -> None:
    from medlens.evaluation import deletion
    from medlens.models import CNN

    parser = argparse.ArgumentParser(description=__doc__)
    options(parser, "evaluation", seed=None)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--steps", type=int, default=20)
    quick_option(parser, QUICK)
    args = parser.parse_args()
    result_name = quick_name(args, "evaluation", QUICK)
    torch.set_num_threads(args.threads)
    origin = provenance(seed=0, config=vars(args))
    torch.manual_seed(0)
    model = CNN(2, 1, 2, input_shape=(1, args.size, args.size)).eval()
    x = torch.rand(args.n, 1, args.size, args.size)
    saliency = torch.rand(args.n, 1, args.size, args.size)
    target = torch.ones(args.n, dtype=torch.long)
    n_evals = args.n * (args.steps + 1)

    t0 = time.perf_counter()
    fast = deletion(model, x, saliency, target, steps=args.steps, baseline="zero")
    t_fast = time.perf_counter() - t0
    t0 = time.perf_counter()
    slow = naive_deletion(model, x, saliency[:, 0], target, args.steps, torch.zeros_like(x))
    t_slow = time.perf_counter() - t0
    assert torch.allclose(fast.auc.float(), slow, atol=1e-4), "the two implementations disagree"
    print(f"deletion, {args.n} images {args.size}x{args.size}, {args.steps} steps = {n_evals} model evaluations")
    print(f"  medlens (batched, engine chunks): {t_fast:7.3f} s  ({1e3 * t_fast / n_evals:.2f} ms per evaluation)")
    print(f"  per-image loop:                   {t_slow:7.3f} s  ({1e3 * t_slow / n_evals:.2f} ms per evaluation)")
    diff = float((fast.auc.float() - slow).abs().max())
    print(f"  speed-up: {t_slow / t_fast:.1f}x, same AUCs (max difference {diff:.1e})")
    numbers = {"images": args.n, "size": args.size, "steps": args.steps, "model_evaluations": n_evals,
               "medlens_s": t_fast, "per_image_loop_s": t_slow, "speedup": t_slow / t_fast, "max_auc_difference": diff}
    print(f"stored {write_result(result_name, numbers, seed=0, config=vars(args), path=args.out, origin=origin)}")


if __name__ == "__main__":
    main()
