"""Acceptance run of the haemorrhage system (issue 13, part 1; Lee et al. 2019) on head-CT phantoms.

    OMP_NUM_THREADS=1 python benchmarks/haemorrhage.py [--out haemorrhage.json]

Generates training (120 cases, 3,840 slices), validation (20) and test (40) phantoms of 32 x 64
x 64 voxels in HU (``medlens.data.synthetic.head_ct``) and the blood-free twins of the test cases, feeds
brain/subdural/bone windows through the recipe, trains the 2.5D slice classifier (a slice with one
neighbour on each side: 9 channels; class-balanced batches) and, on 240/30/100 further phantoms of
the same field of view at 24 x 48 x 48 voxels, the 3D volume classifier (none + five subtypes; half the draws without blood),
and prints every acceptance number: detection AUROC (slice and case level), per-subtype accuracy
with the confusion matrix on slices with blood, pointing game and mass in mask of Grad-CAM and
integrated gradients per subtype, per slice and per volume (slice maps stacked, against the 3D
mask, next to the case's pooled prediction), the windows' contribution per subtype (integrated-gradients share; drop of
the predicted subtype's probability when a window is taken from the blood-free twin; the
flat-channel ablation as a secondary number), the prediction basis's agreement, and the 3D
model's case AUROC. Writes them as JSON with ``--out``. About eight minutes on one CPU core.
"""

from __future__ import annotations

import argparse
import sys

import torch

from _runner import quick_name, quick_option, run_and_report
from medlens.app.systems.haemorrhage import run_haemorrhage

#: The quick configuration: fewer images and epochs (it checks that the numbers reproduce).
QUICK = {"n_train": 40, "n_test": 16, "epochs": 3, "n_train_3d": 40, "epochs_3d": 3}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None, help="where to store the numbers (default benchmarks/results/haemorrhage.json)")
    p.add_argument("--n-train", type=int, default=120)
    p.add_argument("--n-test", type=int, default=40)
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--n-train-3d", type=int, default=240)
    p.add_argument("--epochs-3d", type=int, default=30)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    quick_option(p, QUICK)
    args = p.parse_args(argv)
    result_name = quick_name(args, "haemorrhage", QUICK)
    torch.set_num_threads(args.threads)
    return run_and_report(
        lambda log: run_haemorrhage(n_train=args.n_train, n_test=args.n_test, epochs=args.epochs,
                                    n_train_3d=args.n_train_3d, epochs_3d=args.epochs_3d, seed=args.seed, progress=log),
        args.out, name=result_name, seed=args.seed, config=vars(args),
    )


if __name__ == "__main__":
    sys.exit(main())
