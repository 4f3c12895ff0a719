"""``medlens train``: train a reference model on a bundled data set or an npz file."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, command_parser

    p = command_parser(sub, "train", help="train a reference model", doc=__doc__, examples=[
        "medlens train --data pneumoniamnist --out pneumonia-cnn.pt --epochs 8",
        "medlens train --data ecg5000 --arch attention-rnn --out ecg-rnn.pt",
        "medlens generate lesions --out lesions.npz && medlens train --data lesions.npz --arch interpnet --out interp.pt",
    ])
    p.add_argument("--data", required=True,
                   help="pneumoniamnist, breastmnist, ecg5000 or PATH.npz; oscillators for --arch scinet, "
                        "simulated-fmri for --arch groupinn")
    p.add_argument("--out", required=True, help="model file to write (.pt)")
    p.add_argument("--arch", default="cnn", help="architecture (default: cnn; also attention-rnn, attention-gated, vit, interpnet, scinet, groupinn)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--recipe", metavar="FILE", default=None,
                   help="preprocessing recipe (JSON/YAML) applied to every input and stored in the model file")
    p.add_argument("--window", action="append", metavar="C,W|NAME", default=None,
                   help="CT window in HU, repeatable, one input channel each (brain, subdural, bone or C,W)")
    add_flags(p, "seed", "quiet")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medlens.errors import MedlensError
    from medlens.models import save_model
    from medlens.app.recipes import train_on_dataset

    if args.epochs < 1:
        raise MedlensError(f"--epochs must be at least 1, got {args.epochs}")
    from medlens.app.systems import SYSTEM_DATA

    if args.arch in SYSTEM_DATA:  # representation systems train on their simulators
        from medlens.app.systems import train_system

        model, meta, summary = train_system(args.arch, args.data, epochs=args.epochs, seed=args.seed)
        save_model(model, args.out, meta)
        print(f"{summary} -> {args.out}")
        return 0
    if args.arch == "interpnet":  # a classifier that writes explanations: needs a lesion benchmark npz
        from medlens.selfexplain.interpnet import train_on_lesions

        model, meta = train_on_lesions(args.data, epochs=args.epochs, seed=args.seed, progress=not args.quiet)
    else:
        from medlens.data.preprocess import Recipe, parse_window

        recipe = Recipe.from_file(args.recipe) if args.recipe else None
        if args.window:
            recipe = (recipe or Recipe()).replace(windows=tuple(parse_window(w) for w in args.window))
        model, meta = train_on_dataset(
            args.data, arch=args.arch, epochs=args.epochs, seed=args.seed, progress=not args.quiet, recipe=recipe
        )
    save_model(model, args.out, meta)
    v, t = meta["val"], meta["test"]
    print(
        f"trained {args.arch} on {args.data}: val accuracy {v['accuracy']:.3f} AUROC {v['auroc']:.3f}; "
        f"test accuracy {t['accuracy']:.3f} AUROC {t['auroc']:.3f} -> {args.out}"
    )
    from medlens.app.recipes import chance_warning

    warning = chance_warning(v)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    for decoding, scores in meta.get("explanations", {}).items():
        print(f"explanations ({decoding}): BLEU-4 {scores['bleu4']:.3f}, attribute accuracy "
              f"{scores['attribute_accuracy']['mean']:.3f}")
    return 0
