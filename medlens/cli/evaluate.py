"""``medlens evaluate``: score every explanation method on a data set and write a leaderboard.

Results are written per (case, method) to OUT/results.jsonl as they are computed; rerunning the
same command resumes a killed run. Then OUT gets summary.json / summary.csv (mean and 95 %
confidence interval per method and metric, baselines included), curves.png (mean deletion and
insertion curves) and report.html (the leaderboard section, with which method to trust and why).
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, command_parser

    p = command_parser(sub, "evaluate", help="score explanation methods (leaderboard)", doc=__doc__, examples=[
        "medlens generate lesions --out lesions.npz && medlens train --data lesions.npz --out m.pt",
        "medlens evaluate --model m.pt --data lesions.npz --out leaderboard/",
        "medlens evaluate --model m.pt --data lesions.npz --methods gradcam,integrated_gradients --limit 100 \\",
        "    --option n_steps=16 --option rise.n_masks=500 --metric-option deletion_auc.steps=10 --out leaderboard/",
    ])
    p.add_argument("--model", required=True, help="medlens model file (.pt)")
    p.add_argument("--data", required=True, help="npz data set (e.g. a lesion benchmark) or bundled name")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--methods", default="all", help="'all' or comma-separated method names")
    p.add_argument("--metrics", default="all", help="'all' or comma-separated metric names")
    p.add_argument("--baselines", default="random,centre,edge", help="comma-separated baseline maps ('' for none)")
    p.add_argument("--target", choices=("label", "predicted"), default="label", help="class to explain (default: label)")
    p.add_argument("--cases-per-batch", type=int, default=16, help="cases per batch: the unit of writing and resuming (default 16)")
    p.add_argument("--metric-option", action="append", metavar="METRIC.NAME=VALUE",
                   help="metric option, repeatable (deletion_auc.steps=10)")
    p.add_argument("--restart", action="store_true", help="discard results already in OUT instead of resuming")
    p.add_argument("--out", required=True, help="output folder")
    add_flags(p, "limit", "option", "budget", "seed", "quiet")
    p.set_defaults(run=run)


def _names(value: str) -> object:
    return "all" if value.strip() == "all" else [v.strip() for v in value.split(",") if v.strip()]


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np
    import torch

    from medlens.cli.common import options_per_method, options_per_metric
    from medlens.data import load_dataset
    from medlens.errors import InputError, MedlensError
    from medlens.evaluation.leaderboard import LeaderboardSettings, evaluate
    from medlens.app.evaluation_section import write_leaderboard_outputs
    from medlens.models import load_model

    if args.memory_mb is not None:
        raise MedlensError("evaluate fixes the engine's chunk size so that its numbers are reproducible: "
                           "use --batch-size instead of --memory-mb")
    if args.cases_per_batch < 1:
        raise MedlensError(f"--cases-per-batch must be at least 1, got {args.cases_per_batch}")
    model, meta = load_model(args.model)
    data = load_dataset(args.data, args.split)
    expected = meta.get("input_shape")
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
    n = len(data) if args.limit is None else min(args.limit, len(data))
    settings = LeaderboardSettings(
        methods=_names(args.methods),
        metrics=_names(args.metrics),
        baselines=tuple(_names(args.baselines)) if args.baselines.strip() else (),
        target=args.target,
        seed=args.seed,
        cases_per_batch=args.cases_per_batch,
        **({"batch_size": args.batch_size} if args.batch_size is not None else {}),
        method_options=options_per_method(args.option, _names(args.methods)),
        metric_options=options_per_metric(args.metric_option),
    )
    summary = evaluate(
        model,
        data.inputs[:n],
        data.labels[:n],
        None if data.masks is None else data.masks[:n],
        None if markers is None else markers[:n],
        out=args.out,
        settings=settings,
        data_name=f"{path.name if path.suffix == '.npz' else args.data}/{args.split}",
        class_names=meta.get("class_names") or data.class_names,
        restart=args.restart,
        progress=not args.quiet,
    )
    write_leaderboard_outputs(args.out, summary)
    for sentence in summary["verdict"]["text"][:1]:
        print(sentence)
    if summary["verdict"].get("shortcut_text"):
        print(summary["verdict"]["shortcut_text"])
    print(f"results for {n} cases -> {args.out}")
    return 0
