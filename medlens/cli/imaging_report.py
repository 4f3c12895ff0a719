"""``medlens imaging-report``: the imaging systems (haemorrhage on head CT, attention gates, patch
attention) trained, measured and written as one HTML report, separate from the two-minute demo.

By default every system runs at benchmark size (tens of minutes on two CPU cores); ``--quick``
runs tiny versions (about a minute, numbers not meaningful); ``--results FILE.json`` (repeatable)
reports numbers a benchmark wrote instead of running anything (``benchmarks/haemorrhage.py
--out``, ``benchmarks/attention_gates.py --out``, ``benchmarks/patch_attention.py --out``).
"""

from __future__ import annotations

import argparse

SYSTEMS = ("haemorrhage", "attention_gates", "patch_attention")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, add_out_folder, command_parser

    p = command_parser(sub, "imaging-report", help="train and measure the imaging systems; write an HTML report",
                       doc=__doc__, examples=[
                           "medlens imaging-report --quick --out rep/        # a first look in minutes",
                           "medlens imaging-report --only attention_gates --out rep/",
                           "medlens imaging-report --results haemorrhage.json --results attention_gates.json --out rep/",
                       ])
    add_out_folder(p, default="imaging-report", help="output folder (default: imaging-report)")
    p.add_argument("--only", action="append", choices=SYSTEMS, default=None, help="run only this system (repeatable)")
    p.add_argument("--results", action="append", metavar="FILE.json", default=None,
                   help="numbers written by a benchmark (its file name names the system); nothing is run")
    p.add_argument("--quick", action="store_true", help="tiny settings (for tests and a first look)")
    add_flags(p, "seed", "quiet")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json
    import pathlib

    from medlens.app.systems.reports import write_imaging_report
    from medlens.errors import InputError

    results: dict | None = None
    if args.results:
        results = {}
        for f in args.results:
            p = pathlib.Path(f)
            key = next((s for s in SYSTEMS if s in p.stem), None)
            if key is None:
                raise InputError(f"cannot tell which system {p.name} holds; name it after one of {', '.join(SYSTEMS)}")
            try:
                payload = json.loads(p.read_text(encoding="utf-8"))
                # benchmarks store {"benchmark", "provenance", "numbers"} (benchmarks/_runner.py)
                results[key] = payload["numbers"] if isinstance(payload, dict) and "provenance" in payload else payload
            except (OSError, ValueError) as exc:
                raise InputError(f"cannot read results file {p}: {exc}") from exc
    path = write_imaging_report(args.out, which=args.only or SYSTEMS, quick=args.quick, seed=args.seed,
                                results=results, log=(lambda _: None) if args.quiet else print)
    print(f"wrote {path}")
    return 0
