"""``medlens train``: train a reference model on a bundled data set, an npz file or a folder of scans.

A folder of scans (any format ``medlens explain`` reads) needs ``--labels L.csv`` (columns
``case,label``, a class index or a class name; the names become the model's classes); the cases
go through the recipe of ``--recipe`` / ``--size`` / ``--normalize`` / ``--window`` (min-max
scaling by default), which is stored in the model file, and are split 70/15/15 into training,
validation and test cases by the seed; an optional ``group`` column (a patient id) keeps each
patient's cases in one split. ``--class-names A,B`` fixes the class order (default: the label words
sorted).

Several findings per case train a multi-label model (one sigmoid per finding, binary cross-entropy
with each finding's positives weighted by absent/present; told from the data, no flag): an npz whose
``train_labels`` are ``(N, K)`` of 0/1 (ChestMNIST's layout), or a labels CSV in NIH ChestX-ray14's
layout (``Image Index``/``case``, ``Finding Labels`` as ``Effusion|Mass`` or ``No Finding``, ``Patient
ID``/``group``) or with one column per finding (CheXpert's 1/0/-1/blank: -1 "uncertain" and blank
are read as absent, and counted). Each finding's validation and test AUROC and prevalence are
printed and stored; a finding no better than always answering its majority is warned about.

A notes file (CSV, TSV or JSON Lines with ``text`` and ``label`` columns, renamed with
``--text-column``/``--label-column``; optional ``case`` and ``group``) trains the attention BiGRU on
token ids: the tokenizer is learnt from the training notes and stored in the model file; notes
longer than ``--max-length`` tokens are truncated (the command says how many).

A folder of signal records (WFDB ``.hea``/``.dat``, EDF) with ``--windows beats`` cuts a window
around every annotation (``--before``/``--after`` seconds) labelled by ``--annotation-labels
N:normal,V:ventricular``; ``--windows fixed --length S [--step S] --labels L.csv`` cuts fixed
windows labelled per record (CSV record,label). The rate, window and leads are stored.
"""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, command_parser
    from medlens.cli.inputs import add_recipe_flags, add_text_flags

    p = command_parser(sub, "train", help="train a reference model", doc=__doc__, examples=[
        "medlens train --data pneumoniamnist --out pneumonia-cnn.pt --epochs 8",
        "medlens train --data ecg5000 --arch attention-rnn --out ecg-rnn.pt",
        "medlens train --data scans/ --labels scans/labels.csv --size 64,64 --out scans-cnn.pt",
        "medlens generate lesions --out lesions.npz && medlens train --data lesions.npz --arch interpnet --out interp.pt",
        "medlens train --data notes.csv --text-column report --label-column finding --out notes.pt",
        "medlens train --data mitdb/ --windows beats --before 0.25 --after 0.45 --annotation-labels N:normal,A:atrial --out beats.pt",
    ])
    p.add_argument("--data", required=True,
                   help="pneumoniamnist, breastmnist, ecg5000, PATH.npz, a folder of scans (with --labels), a notes "
                        "file (.csv/.tsv/.jsonl) or signal records (with --windows); "
                        "oscillators for --arch scinet, simulated-fmri for --arch groupinn")
    p.add_argument("--labels", default=None, metavar="FILE",
                   help="scans: CSV with columns case,label[,group] (a class index or a class name), or several "
                        "findings per case (NIH's 'Finding Labels', or one 0/1 column per finding); "
                        "fixed-window records: CSV record,label")
    p.add_argument("--out", required=True, help="model file to write (.pt)")
    p.add_argument("--arch", default=None, help="architecture (default: cnn, attention-rnn for notes and records; "
                                               "also attention-gated, vit, interpnet, scinet, groupinn; "
                                               "transformer: a small transformer encoder for notes)")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--class-names", default=None, metavar="A,B",
                   help="the classes in label order (e.g. normal,pneumonia), stored in the model file (default: the "
                        "label words sorted, or the annotation map's order); without names a finding reads 'class 0'")
    p.add_argument("--max-length", type=int, default=256, help="notes: tokens per note kept (default: 256)")
    p.add_argument("--windows", choices=("beats", "fixed"), default=None, help="records: how windows are cut")
    p.add_argument("--annotation-labels", default=None, metavar="SYM:CLASS,...",
                   help="beat windows: annotation symbols mapped to classes (N:normal,V:ventricular)")
    p.add_argument("--before", type=float, default=0.25, help="beat windows: seconds before the annotation (default 0.25)")
    p.add_argument("--after", type=float, default=0.45, help="beat windows: seconds after the annotation (default 0.45)")
    p.add_argument("--length", type=float, default=None, help="fixed windows: seconds per window")
    p.add_argument("--step", type=float, default=None, help="fixed windows: seconds between window starts (default: --length)")
    add_text_flags(p)
    add_recipe_flags(p)
    add_flags(p, "memory", "seed", "quiet")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medlens.app.train import TrainRequest, train_model
    from medlens.cli.inputs import recipe_options

    result = train_model(TrainRequest(data=args.data, out=args.out, arch=args.arch, epochs=args.epochs,
                                      labels=args.labels, recipe=recipe_options(args), seed=args.seed,
                                      quiet=args.quiet, memory_mb=args.memory_mb,
                                      class_names=args.class_names,
                                      text_column=args.text_column, label_column=args.label_column,
                                      max_length=args.max_length, windows=args.windows,
                                      annotation_labels=args.annotation_labels, before=args.before, after=args.after,
                                      length=args.length, step=args.step))
    print(result.summary)
    if result.warning:
        for line in result.warning.splitlines():
            print(f"warning: {line}", file=sys.stderr)
    for line in result.lines:
        print(line)
    from medlens.cli import SOME_FAILED, list_failures

    list_failures(result.failures)
    return SOME_FAILED if result.failures else 0
