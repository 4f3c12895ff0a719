"""Acceptance run of the haemorrhage system (issue 13, part 1; Lee et al. 2019) on head-CT phantoms.

    OMP_NUM_THREADS=1 python benchmarks/haemorrhage.py --threads 1 [--out haemorrhage.json]

Generates training (64 cases, 2,048 slices), validation (12) and test (25) phantoms of 32 x 64 x
64 voxels in HU (``medlens.data.head_ct``), feeds brain/subdural/bone windows through the recipe,
trains the 2.5D slice classifier (a slice with one neighbour on each side: 9 channels) and the
3D volume classifier (none + five subtypes), and prints every acceptance number: detection
AUROC (slice and case level), per-subtype accuracy, Grad-CAM pointing game and mass in mask per
subtype, the windows' contribution per class (integrated-gradients share and ablation drop),
the prediction basis's agreement. Writes them as JSON with ``--out``.
"""

from __future__ import annotations

import argparse
import sys

import torch

from _runner import run_and_report
from medlens.app.imaging_systems import run_haemorrhage


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None, help="write the numbers as JSON")
    p.add_argument("--n-train", type=int, default=64)
    p.add_argument("--n-test", type=int, default=25)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--epochs-3d", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    return run_and_report(
        lambda log: run_haemorrhage(n_train=args.n_train, n_test=args.n_test, epochs=args.epochs, epochs_3d=args.epochs_3d, seed=args.seed, log=log), args.out
    )


if __name__ == "__main__":
    sys.exit(main())
