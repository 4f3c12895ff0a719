"""``medlens train``: train a reference model on a bundled data set, an npz file or a folder of scans.

A folder of scans (any format ``medlens explain`` reads) needs ``--labels L.csv`` (columns
``case,label``, a class index or a class name; the names become the model's classes); the cases
go through the recipe of ``--recipe`` / ``--size`` / ``--normalize`` / ``--window`` (min-max
scaling by default), which is stored in the model file, and are split 70/15/15 into training,
validation and test cases by the seed.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, command_parser
    from medlens.cli.inputs import add_recipe_flags

    p = command_parser(sub, "train", help="train a reference model", doc=__doc__, examples=[
        "medlens train --data pneumoniamnist --out pneumonia-cnn.pt --epochs 8",
        "medlens train --data ecg5000 --arch attention-rnn --out ecg-rnn.pt",
        "medlens train --data scans/ --labels scans/labels.csv --size 64,64 --out scans-cnn.pt",
        "medlens generate lesions --out lesions.npz && medlens train --data lesions.npz --arch interpnet --out interp.pt",
    ])
    p.add_argument("--data", required=True,
                   help="pneumoniamnist, breastmnist, ecg5000, PATH.npz or a folder of scans (with --labels); "
                        "oscillators for --arch scinet, simulated-fmri for --arch groupinn")
    p.add_argument("--labels", default=None, metavar="FILE",
                   help="scans: CSV with columns case,label (a class index or a class name)")
    p.add_argument("--out", required=True, help="model file to write (.pt)")
    p.add_argument("--arch", default="cnn", help="architecture (default: cnn; also attention-rnn, attention-gated, vit, interpnet, scinet, groupinn)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--class-names", default=None, metavar="A,B",
                   help="names of the classes in label order (e.g. normal,pneumonia), stored in the model file; "
                        "without them (and without names in the data) a finding reads 'class 0'")
    add_recipe_flags(p)
    add_flags(p, "memory", "seed", "quiet")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medlens.app.train import TrainRequest, train_model
    from medlens.cli.inputs import recipe_options

    result = train_model(TrainRequest(data=args.data, out=args.out, arch=args.arch, epochs=args.epochs,
                                      labels=args.labels, recipe=recipe_options(args), seed=args.seed,
                                      class_names=args.class_names, quiet=args.quiet, memory_mb=args.memory_mb))
    print(result.summary)
    if result.warning:
        print(f"warning: {result.warning}", file=sys.stderr)
    for line in result.lines:
        print(line)
    from medlens.cli import SOME_FAILED, list_failures

    list_failures(result.failures)
    return SOME_FAILED if result.failures else 0
