"""``medlens systems``: run DeepTune, SciNet and GroupINN on their simulators and write the report."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, command_parser

    p = command_parser(sub, "systems", help="representation systems report (DeepTune, SciNet, GroupINN)",
                       doc=__doc__, examples=[
                           "medlens systems --out systems.html",
                           "medlens systems --only scinet groupinn --out systems.html",
                           "medlens systems --quick --quiet --out /tmp/systems.html   # a smoke test, about a minute on 2 cores",
                       ])
    p.add_argument("--out", required=True, help="HTML report to write")
    p.add_argument("--only", nargs="+", choices=["deeptune", "scinet", "groupinn"], help="run only these systems")
    p.add_argument("--quick", action="store_true", help="tiny settings: a smoke test (about 40 s to a minute on 2 cores), not the measurements")
    add_flags(p, "seed", "quiet")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medlens.app.systems import SYSTEMS, systems_report

    path, _ = systems_report(args.out, quick=args.quick, seed=args.seed, systems=args.only or SYSTEMS,
                             progress=not args.quiet)
    print(f"wrote {path}")
    return 0
