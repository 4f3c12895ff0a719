"""``medlens evaluate``: score every explanation method on a data set and write a leaderboard.

Results are written per (case, method) to OUT/results.jsonl as they are computed; rerunning the
same command resumes a killed run. Then OUT gets summary.json / summary.csv (mean and 95 %
confidence interval per method and metric, baselines included), curves.png (mean deletion and
insertion curves) and report.html (the leaderboard section, with which method to trust and why).
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score explanation methods (leaderboard)", description=__doc__)
    p.add_argument("--model", required=True, help="medlens model file (.pt)")
    p.add_argument("--data", required=True, help="npz data set (e.g. a lesion benchmark) or bundled name")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--n", type=int, default=None, help="evaluate only the first N cases")
    p.add_argument("--methods", default="all", help="'all' or comma-separated method names")
    p.add_argument("--metrics", default="all", help="'all' or comma-separated metric names")
    p.add_argument("--baselines", default="random,centre,edge", help="comma-separated baseline maps ('' for none)")
    p.add_argument("--target", choices=("label", "predicted"), default="label", help="class to explain (default: label)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-size", type=int, default=16, help="cases per batch (the unit of resuming)")
    p.add_argument("--option", action="append", metavar="METHOD:NAME=VALUE", help="method option, repeatable (rise:n_masks=500)")
    p.add_argument("--metric-option", action="append", metavar="METRIC:NAME=VALUE", help="metric option, repeatable (deletion_auc:steps=10)")
    p.add_argument("--restart", action="store_true", help="discard results already in OUT instead of resuming")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(run=run)


def _scoped_options(pairs: list[str] | None, what: str) -> dict[str, dict]:
    from medlens.cli.common import parse_options
    from medlens.errors import MedlensError

    scoped: dict[str, dict] = {}
    for pair in pairs or []:
        if ":" not in pair.split("=", 1)[0]:
            raise MedlensError(f"{what} option {pair!r} must look like {what.upper()}:NAME=VALUE")
        scope, rest = pair.split(":", 1)
        scoped.setdefault(scope.strip(), {}).update(parse_options([rest]))
    return scoped


def _names(value: str) -> object:
    return "all" if value.strip() == "all" else [v.strip() for v in value.split(",") if v.strip()]


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np
    import torch

    from medlens.data import load_dataset
    from medlens.errors import InputError, MedlensError
    from medlens.evaluation.leaderboard import LeaderboardSettings, evaluate
    from medlens.app.evaluation_section import write_leaderboard_outputs
    from medlens.models import load_model

    if args.batch_size < 1:
        raise MedlensError(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.n is not None and args.n < 1:
        raise MedlensError(f"--n must be at least 1, got {args.n}")
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
    n = len(data) if args.n is None else min(args.n, len(data))
    settings = LeaderboardSettings(
        methods=_names(args.methods),
        metrics=_names(args.metrics),
        baselines=tuple(_names(args.baselines)) if args.baselines.strip() else (),
        target=args.target,
        seed=args.seed,
        batch_size=args.batch_size,
        method_options=_scoped_options(args.option, "method"),
        metric_options=_scoped_options(args.metric_option, "metric"),
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
