"""``medlens evaluate``: score every explanation method on a data set and write a leaderboard.

Results are written per (case, method) to OUT/results.jsonl as they are computed; rerunning the
same command resumes a killed run. Then OUT gets summary.json / summary.csv (mean and 95 %
confidence interval per method and metric, baselines included), curves.png (mean deletion and
insertion curves) and report.html (the leaderboard section, with which method to trust and why).

--data is an npz data set (labels, and masks where it has them), a bundled name, or scans: a file,
a DICOM series folder or a folder of cases, read exactly as ``medlens explain`` reads them (DICOM
slices grouped by series, every case through the model's recipe; --recipe/--window/... for a
model without one). Scans have labels only from --labels (CSV with columns case,label); without
them the predicted class is explained. An optional ``mask`` column names each case's evidence mask
(NIfTI, PNG, TIFF or .npy on the scan's grid, relative to the CSV), carried onto the model's grid
as the scan was, so that pointing game, mass in mask and IoU score the maps against it. Metrics that need masks or markers the data do not have
are skipped, and the command says which. A case that cannot be read is listed in
OUT/unreadable.csv with its error, and the others are evaluated.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, add_out_folder, command_parser
    from medlens.cli.inputs import add_recipe_flags

    p = command_parser(sub, "evaluate", help="score explanation methods (leaderboard)", doc=__doc__, examples=[
        "medlens generate lesions --out lesions.npz && medlens train --data lesions.npz --out m.pt",
        "medlens evaluate --model m.pt --data lesions.npz --out leaderboard/",
        "medlens evaluate --model m.pt --data lesions.npz --methods gradcam,integrated_gradients --limit 100 \\",
        "    --option n_steps=16 --option rise.n_masks=500 --metric-option deletion_auc.steps=10 --out leaderboard/",
        "medlens evaluate --model ct.pt --data head_ct/images --labels head_ct/labels.csv --methods gradcam,occlusion --out leaderboard/",
    ])
    p.add_argument("--model", required=True, help="medlens model file (.pt) or TorchScript file")
    p.add_argument("--data", required=True,
                   help="npz data set (e.g. a lesion benchmark), bundled name, a scan file or a folder of scans")
    p.add_argument("--labels", default=None, metavar="FILE", help="scans: CSV with columns case,label (a class index or name) and optionally mask (a path)")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--methods", default="all", help="'all' or comma-separated method names")
    p.add_argument("--metrics", default="all", help="'all' or comma-separated metric names")
    p.add_argument("--baselines", default="random,centre,edge", help="comma-separated baseline maps ('' for none)")
    p.add_argument("--target", "--target-class", dest="target", default=None, metavar="label|predicted|CLASS",
                   help="class to explain: each case's label, its predicted class, or one class (a finding of a "
                        "multi-label model) by name or index on every case (default: the label where every case "
                        "has one, else the predicted class)")
    p.add_argument("--cases-per-batch", type=int, default=16, help="cases per batch: the unit of writing and resuming (default 16)")
    p.add_argument("--metric-option", action="append", metavar="METRIC.NAME=VALUE",
                   help="metric option, repeatable (deletion_auc.steps=10)")
    p.add_argument("--restart", action="store_true", help="discard results already in OUT instead of resuming")
    add_out_folder(p, help="output folder")
    p.add_argument("--show-identifiers", action="store_true",
                   help="name scans by their file paths in every output (default: pseudonymous ids, the files "
                        "listed in identifiers.csv only)")
    p.add_argument("--allow-outside", action="store_true",
                   help="let the labels file name masks outside the data folder (refused by default)")
    add_recipe_flags(p)
    add_flags(p, "limit", "option", "budget", "seed", "quiet", "multi-label")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medlens.app.evaluate import EvaluateRequest, evaluate_methods
    from medlens.cli.common import parse_options
    from medlens.cli.inputs import recipe_options

    result = evaluate_methods(EvaluateRequest(
        model=args.model, data=args.data, out=args.out, labels=args.labels, split=args.split,
        methods=args.methods, metrics=args.metrics,
        baselines=tuple(v.strip() for v in args.baselines.split(",") if v.strip()),
        target=args.target, cases_per_batch=args.cases_per_batch, options=parse_options(args.option),
        metric_options=parse_options(args.metric_option), restart=args.restart, recipe=recipe_options(args),
        limit=args.limit, batch_size=args.batch_size, memory_mb=args.memory_mb, seed=args.seed, quiet=args.quiet,
        show_identifiers=args.show_identifiers, allow_outside=args.allow_outside, multi_label=args.multi_label,
    ))
    verdict = result.summary["verdict"]
    for caution in result.summary.get("warnings") or ():
        print(f"warning: {caution}")
    for sentence in verdict["text"][:1]:
        print(sentence)
    if verdict.get("shortcut_text"):
        print(verdict["shortcut_text"])
    for note in result.notes:
        print(f"note: {note}")
    from medlens.cli import SOME_FAILED, list_failures

    if result.failures:
        print(f"{len(result.failures)} case(s) could not be read and were left out; their errors: unreadable.csv")
        list_failures([(case, error) for case, error in result.failures])
    print(f"results for {result.n} cases -> {args.out}")
    return SOME_FAILED if result.failures else 0
