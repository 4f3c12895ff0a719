"""``medlens demo``: train or reuse the demo model, explain test cases, write report.html.

``medlens demo --systems`` writes the imaging systems' report instead (haemorrhage on head CT,
attention-gated networks, attention over patches; the same as ``medlens imaging-report``): each
system trained and measured at benchmark size, tens of minutes on two CPU cores, or in about a
minute with ``--quick`` (numbers not meaningful). The default demo does not run them."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, add_out_folder, command_parser

    p = command_parser(sub, "demo", help="run the demo and write an HTML report", doc=__doc__, examples=[
        "medlens demo                      # writes demo-out/report.html",
        "medlens demo --out /tmp/demo --examples 6",
        "medlens demo --quick --quiet      # smaller settings everywhere",
        "medlens demo --systems --out sys/ # the imaging systems' report (haemorrhage, attention gates, MIL)",
    ])
    add_out_folder(p, default=None,
                   help="output folder (default: demo-out, with --systems demo-out/systems)")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--examples", type=int, default=4, help="test cases to explain (default 4)")
    p.add_argument("--quick", action="store_true", help="smaller settings everywhere (for tests)")
    p.add_argument("--systems", action="store_true",
                   help="write the imaging systems' report (as medlens imaging-report) instead of the demo")
    add_flags(p, "seed", "quiet")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.systems:
        from medlens.app.systems.reports import write_imaging_report

        path = write_imaging_report(args.out or "demo-out/systems", quick=args.quick, seed=args.seed,
                                    log=(lambda _: None) if args.quiet else print)
        print(f"wrote {path}")
        return 0
    from medlens.app.demo import run_demo

    run_demo(args.out or "demo-out", epochs=args.epochs, n_cases=args.examples, seed=args.seed, quick=args.quick,
             progress=not args.quiet)
    return 0
