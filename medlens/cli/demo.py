"""``medlens demo``: train or reuse the demo model, explain test cases, write report.html."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run the demo and write an HTML report", description=__doc__)
    p.add_argument("--out", default="demo-out", help="output folder (default: demo-out)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--cases", type=int, default=4, help="test cases to explain")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="smaller settings everywhere (for tests)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medlens.app.demo import run_demo

    run_demo(args.out, epochs=args.epochs, n_cases=args.cases, seed=args.seed, quick=args.quick)
    return 0
