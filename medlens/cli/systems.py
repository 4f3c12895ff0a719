"""``medlens systems``: run DeepTune, SciNet and GroupINN on their simulators and write the report."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("systems", help="representation systems report (DeepTune, SciNet, GroupINN)",
                       description=__doc__)
    p.add_argument("--out", required=True, help="HTML report to write")
    p.add_argument("--only", nargs="+", choices=["deeptune", "scinet", "groupinn"], help="run only these systems")
    p.add_argument("--quick", action="store_true", help="tiny settings: a smoke test in seconds, not the measurements")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medlens.app.systems import SYSTEMS, systems_report

    path, _ = systems_report(args.out, quick=args.quick, seed=args.seed, systems=args.only or SYSTEMS,
                             progress=not args.quiet)
    print(f"wrote {path}")
    return 0
