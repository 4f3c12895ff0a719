"""Acceptance run of attention-gated networks (issue 13, part 2; Schlemper et al. 2019) on the lesion benchmark.

    OMP_NUM_THREADS=1 python benchmarks/attention_gates.py [--seed 0]      # benchmarks/results/attention_gates.json
    OMP_NUM_THREADS=1 python benchmarks/attention_gates.py --quick        # benchmarks/results/attention_gates-quick.json

Trains the attention-gated classifier and the plain CNN on the 2D lesion benchmark (64x64, 800
training images), then prints: test accuracy/AUROC of both; pointing game and mass in mask of the
gate maps (mean and per gate), of Grad-CAM on the gated model and of Grad-CAM on the CNN;
deletion AUC of the gate map, Grad-CAM and a random map; the decision changes when the gates are
permuted or replaced by uniform gates (Jain and Wallace 2019).
"""

from __future__ import annotations

import argparse
import sys

import torch

from _runner import run_and_report
from medlens.app.systems import run_attention_gates

#: The quick configuration: 800 training images, 4 epochs (200 images x 3 epochs and 400 x 5
#: left both models at chance, which checks nothing).
QUICK = {"n_train": 800, "epochs": 4}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None, help="where to store the numbers (default benchmarks/results/attention_gates.json)")
    p.add_argument("--n-train", type=int, default=800)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true",
                   help=f"the quick configuration {QUICK} (the slow test re-runs it against its stored file)")
    args = p.parse_args(argv)
    if args.quick:
        vars(args).update(QUICK)
    torch.set_num_threads(args.threads)
    return run_and_report(
        lambda log: run_attention_gates(n_train=args.n_train, epochs=args.epochs, seed=args.seed, progress=log),
        args.out, name="attention_gates" + ("-quick" if args.quick else ""), seed=args.seed, config=vars(args),
    )


if __name__ == "__main__":
    sys.exit(main())
