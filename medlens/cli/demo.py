"""``medlens demo``: train or reuse the demo model, explain test cases, write report.html."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, command_parser

    p = command_parser(sub, "demo", help="run the demo and write an HTML report", doc=__doc__, examples=[
        "medlens demo                      # writes demo-out/report.html",
        "medlens demo --out /tmp/demo --examples 6",
        "medlens demo --quick --quiet      # smaller settings everywhere",
    ])
    p.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--examples", type=int, default=4, help="test cases to explain (default 4)")
    p.add_argument("--quick", action="store_true", help="smaller settings everywhere (for tests)")
    add_flags(p, "seed", "quiet")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medlens.app.demo import run_demo

    run_demo(args.out, epochs=args.epochs, n_cases=args.examples, seed=args.seed, quick=args.quick,
             progress=not args.quiet)
    return 0
