"""``medlens predict``: the model's prediction for every case of a data set, with summary metrics.

DATA is whatever the model reads: an npz or bundled data set (``--split``), a scan or a folder of
scans (``--labels`` CSV with columns case,label, labels as class indices or names), a CSV / JSON
Lines file of notes for a text model (``--text-column``, ``--label-column``; notes longer than the
model's tokenizer allows are truncated, and the command says how many), or a WFDB/EDF record or a
folder of records for a model trained on signal windows (beat windows take their labels from the
annotations; fixed windows from ``--labels`` with columns record,label).

OUT gets predictions.csv (case, label, predicted class, the probability of every class, by class
name), familiarity.csv (whether each case is unlike the model's training data) and, when labels
exist, metrics.json (accuracy, AUROC, expected calibration error). Scans,
records and notes are named case-0000... and identifiers.csv maps them to their files, records and
the notes file's case ids, unless ``--show-identifiers``.
Predictions are committed to OUT/predictions.sqlite as each batch finishes, so running the same
command again resumes a killed run; ``--engine ray`` runs the batches on Ray actors like ``audit``.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, command_parser
    from medlens.cli.inputs import add_recipe_flags, add_text_flags

    p = command_parser(sub, "predict", help="predict every case of a data set (predictions.csv, metrics.json)",
                       doc=__doc__, examples=[
                           "medlens predict --model m.pt --data lesions.npz --out predictions/",
                           "medlens predict --model scans-cnn.pt --data scans/ --labels scans/labels.csv --out predictions/",
                           "medlens predict --model notes.pt --data notes.csv --out predictions/",
                           "medlens predict --model beats.pt --data records/ --out predictions/",
                       ])
    p.add_argument("--model", required=True, help="medlens model file (.pt) or TorchScript file")
    p.add_argument("--data", required=True,
                   help="npz data set, bundled name, scans (file or folder), a notes file, or signal records")
    p.add_argument("--labels", default=None, metavar="FILE",
                   help="scans: CSV case,label; fixed-window records: CSV record,label")
    p.add_argument("--split", default="test", help="split of an npz or bundled data set (default: test)")
    p.add_argument("--out", required=True, help="output folder (its predictions.sqlite is resumed)")
    p.add_argument("--cases-per-batch", type=int, default=64,
                   help="cases per unit of work: of computing, committing and retrying (default: 64)")
    p.add_argument("--engine", choices=("local", "ray"), default="local")
    p.add_argument("--address", default=None, help="Ray cluster address (default: start Ray on this machine)")
    p.add_argument("--workers", type=int, default=None, help="Ray actors (default: one per CPU)")
    p.add_argument("--restart", action="store_true", help="discard the predictions stored in OUT instead of resuming")
    p.add_argument("--show-identifiers", action="store_true",
                   help="name cases by their files, records or the notes file's case ids (default: case-0000..., "
                        "listed in identifiers.csv only)")
    add_text_flags(p)
    add_recipe_flags(p)
    add_flags(p, "limit", "quiet", "multi-label")
    p.add_argument("--batch-size", type=int, default=None, metavar="N", help="inputs the engine evaluates at once (default: 64, fixed so that results never depend on free memory)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medlens.app.predict import PredictRequest, predict_cases
    from medlens.app.predict_outputs import metrics_lines
    from medlens.cli import SOME_FAILED, list_failures
    from medlens.cli.inputs import recipe_options

    result = predict_cases(PredictRequest(
        model=args.model, data=args.data, out=args.out, split=args.split, labels=args.labels,
        text_column=args.text_column, label_column=args.label_column, recipe=recipe_options(args),
        engine=args.engine, address=args.address, workers=args.workers, cases_per_batch=args.cases_per_batch,
        batch_size=args.batch_size, restart=args.restart, limit=args.limit, quiet=args.quiet,
        show_identifiers=args.show_identifiers, multi_label=args.multi_label,
    ))
    print(f"predicted {result.n_new} new case(s) of {result.n_cases} ({result.kind}) on the {args.engine} engine")
    for note in result.notes:
        print(f"note: {note}")
    m = result.metrics
    if m is not None:
        print("\n".join(metrics_lines(m)))
    if result.failures:
        print(f"{len(result.failures)} case(s) could not be read and were left out; their errors: unreadable.csv")
    print(f"{', '.join(p.name for p in result.files)} -> {args.out}")
    if result.failures:
        list_failures([(failure.case, failure.error) for failure in result.failures])
        return SOME_FAILED
    return 0
