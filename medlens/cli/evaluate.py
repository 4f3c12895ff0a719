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
    from medlens.cli.common import add_flags, command_parser
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
    p.add_argument("--target", choices=("label", "predicted"), default=None,
                   help="class to explain (default: the label where every case has one, else the predicted class)")
    p.add_argument("--cases-per-batch", type=int, default=16, help="cases per batch: the unit of writing and resuming (default 16)")
    p.add_argument("--metric-option", action="append", metavar="METRIC.NAME=VALUE",
                   help="metric option, repeatable (deletion_auc.steps=10)")
    p.add_argument("--restart", action="store_true", help="discard results already in OUT instead of resuming")
    p.add_argument("--out", required=True, help="output folder")
    add_recipe_flags(p)
    add_flags(p, "limit", "option", "budget", "seed", "quiet")
    p.set_defaults(run=run)


def _names(value: str) -> object:
    return "all" if value.strip() == "all" else [v.strip() for v in value.split(",") if v.strip()]


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from medlens.app.evaluation_section import write_leaderboard_outputs
    from medlens.attribution.explain import check_runnable, runnable_methods
    from medlens.cli.common import options_per_method, options_per_metric
    from medlens.errors import MedlensError
    from medlens.evaluation.leaderboard import LeaderboardSettings, evaluate
    from medlens.models import load_model

    if args.memory_mb is not None:
        raise MedlensError("evaluate fixes the engine's chunk size so that its numbers are reproducible: "
                           "use --batch-size instead of --memory-mb")
    if args.cases_per_batch < 1:
        raise MedlensError(f"--cases-per-batch must be at least 1, got {args.cases_per_batch}")
    model, meta = load_model(args.model)
    data = _evaluation_data(args, meta)
    target = args.target or ("label" if data.labels is not None else "predicted")
    if target == "label" and data.labels is None:
        raise MedlensError(f"--target label needs a label for every case: {data.unlabelled} of {data.n} case(s) have "
                           "none (give --labels FILE with columns case,label, or --target predicted)")
    methods = _names(args.methods)
    options = options_per_method(args.option, methods)
    notes = list(data.notes)
    if args.target is None and target == "predicted":
        notes.append(f"explained the predicted class: {data.unlabelled} of {data.n} case(s) have no label "
                     "(--labels FILE gives them)")
    if methods == "all":  # on a TorchScript model, "all" leaves out the methods that read layers
        from medlens.attribution.explain import methods as registered_methods

        runnable, note = runnable_methods(model, registered_methods(), options)
        if note:
            methods, options = runnable, {k: v for k, v in options.items() if k in runnable}
            notes.append(note)
    for m in ([] if methods == "all" else methods):
        check_runnable(model, m, options.get(m))
    metrics = _names(args.metrics)
    if metrics == "all":
        notes += _skipped_metrics(data.has_masks, data.has_markers)
    n = data.n if args.limit is None else min(args.limit, data.n)
    settings = LeaderboardSettings(
        methods=methods,
        metrics=metrics,
        baselines=tuple(_names(args.baselines)) if args.baselines.strip() else (),
        target=target,
        seed=args.seed,
        cases_per_batch=args.cases_per_batch,
        **({"batch_size": args.batch_size} if args.batch_size is not None else {}),
        method_options=options,
        metric_options=options_per_metric(args.metric_option),
    )
    summary = evaluate(
        model,
        data.inputs[:n],
        None if data.labels is None else data.labels[:n],
        None if data.masks is None else data.masks[:n],
        None if data.markers is None else data.markers[:n],
        out=args.out,
        settings=settings,
        data_name=data.name,
        class_names=meta.get("class_names") or data.class_names,
        restart=args.restart,
        progress=not args.quiet,
    )
    write_leaderboard_outputs(args.out, summary)
    if data.failures:
        from medlens.audit.store import write_csv

        write_csv(Path(args.out) / "unreadable.csv", ["case", "error"], data.failures)
    for sentence in summary["verdict"]["text"][:1]:
        print(sentence)
    if summary["verdict"].get("shortcut_text"):
        print(summary["verdict"]["shortcut_text"])
    for note in notes:
        print(f"note: {note}")
    if data.failures:
        print(f"{len(data.failures)} case(s) could not be read and were left out; their errors: unreadable.csv")
    print(f"results for {n} cases -> {args.out}")
    return 0


def _skipped_metrics(has_masks: bool, has_markers: bool) -> list[str]:
    """What ``--metrics all`` leaves out for data without evidence masks or marker masks, in words."""
    from medlens.evaluation.registry import get_metric, metric_names

    notes = []
    for needs, have, what in (("needs_masks", has_masks, "evidence masks"), ("needs_marker", has_markers, "shortcut-marker masks")):
        skipped = [n for n in metric_names() if getattr(get_metric(n), needs) and not have]
        if skipped:
            notes.append(f"skipped {', '.join(skipped)}: the data have no {what}")
    return notes


class _Data:
    """What evaluate scores: inputs, labels (or None), masks and markers (or None), and notes."""

    def __init__(self, inputs, labels, masks, markers, name, class_names=(), failures=(), unlabelled=0, notes=()):
        import torch

        self.inputs, self.labels, self.masks, self.markers = inputs, labels, masks, markers
        self.name, self.class_names = name, class_names
        self.failures, self.unlabelled, self.notes = list(failures), unlabelled, list(notes)
        self.n = len(inputs)
        self.has_masks = masks is not None and bool(torch.as_tensor(masks).any())
        self.has_markers = markers is not None and bool(torch.as_tensor(markers).any())


def _evaluation_data(args: argparse.Namespace, meta: dict) -> _Data:
    """An npz data set or a bundled name (labels, masks, markers), or scans through the model's recipe."""
    from pathlib import Path

    import numpy as np
    import torch

    from medlens.data import BUNDLED, load_dataset
    from medlens.errors import InputError, MedlensError

    expected = meta.get("input_shape")
    if args.data in BUNDLED or str(args.data).lower().endswith(".npz"):
        if args.labels:
            raise MedlensError("--labels is for scans: an npz data set carries its own labels")
        data = load_dataset(args.data, args.split)
        if expected is not None and list(data.inputs.shape[1:]) != list(expected):
            raise InputError(
                f"the data has inputs of shape {tuple(data.inputs.shape[1:])}, the model expects {tuple(expected)}"
            )
        markers = None
        path = Path(str(args.data))
        if path.suffix == ".npz" and path.exists():
            with np.load(path) as raw:
                key = f"{args.split}_marker_masks"
                if key in raw.files:
                    markers = torch.from_numpy(np.asarray(raw[key], dtype=bool))
        name = f"{path.name if path.suffix == '.npz' else args.data}/{args.split}"
        return _Data(data.inputs, data.labels, data.masks, markers, name, data.class_names)
    return _scan_data(args, meta)


def _scan_data(args: argparse.Namespace, meta: dict) -> _Data:
    """Every readable case of a scan file or folder, as ``medlens explain`` reads it."""
    from pathlib import Path

    import torch

    from medlens.cli.inputs import recipe_from_args
    from medlens.data.formats.folders import ScanSet
    from medlens.errors import InputError

    scans = ScanSet(args.data, recipe_from_args(args, meta), args.labels, meta.get("class_names") or ())
    n = len(scans) if args.limit is None else min(args.limit, len(scans))
    x, kept, failed = scans.load(range(n))
    failures = [[scans.names[i], err] for i, err in sorted(failed.items())]
    if x is None:
        first = failures[0][1] if failures else ""
        raise InputError(f"nothing readable in {args.data} ({len(failures)} case(s); first error: {first})")
    labels = [scans.labels[i] for i in kept]
    unlabelled = sum(v is None for v in labels)
    return _Data(x, None if unlabelled else torch.tensor(labels, dtype=torch.long), scans.masks(kept), None,
                 f"{Path(str(args.data)).name} ({len(kept)} scans)", tuple(meta.get("class_names") or ()),
                 failures, unlabelled)
