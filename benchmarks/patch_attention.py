"""Acceptance run of attention over patches (issue 13, part 3; Ilse et al. 2018, Tomita et al. 2019).

    OMP_NUM_THREADS=1 python benchmarks/patch_attention.py --threads 1 [--out patch_attention.json]

Generates large slides (default 256x256 in 32-pixel patches, 64 per slide, to finish on a shared
2-core machine; ``--size 1024 --patch 64`` for slides of the issue's size) tiled from
the bundled chest X-rays, with rings (evidence) in 1-3 patches of positive slides and discs
(distractors) in both classes; trains gated attention-MIL from slide labels only; prints slide
AUROC, the attention on evidence patches against their share of patches (and on distractors),
how often the top patch is evidence, and attention-vs-gradient agreement (Kendall tau, same top
patch).
"""

from __future__ import annotations

import argparse
import sys

import torch

from _runner import quick_name, quick_option, run_and_report
from medlens.app.systems import run_patch_attention

#: The quick configuration: smaller scans, fewer images and epochs (it checks that the numbers reproduce).
QUICK = {"n_train": 40, "epochs": 3, "size": 128}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=None, help="where to store the numbers (default benchmarks/results/patch_attention.json)")
    p.add_argument("--n-train", type=int, default=160)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--patch", type=int, default=32)
    p.add_argument("--plain", action="store_true", help="plain (not gated) attention")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    quick_option(p, QUICK)
    args = p.parse_args(argv)
    result_name = quick_name(args, "patch_attention", QUICK)
    torch.set_num_threads(args.threads)
    return run_and_report(
        lambda log: run_patch_attention(n_train=args.n_train, epochs=args.epochs, size=args.size, patch=args.patch, gated=not args.plain, seed=args.seed, progress=log),
        args.out, name=result_name, seed=args.seed, config=vars(args),
    )


if __name__ == "__main__":
    sys.exit(main())
