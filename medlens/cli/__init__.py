"""The ``medlens`` command line.

Each subcommand lives in its own module with ``add_parser(subparsers)`` and ``run(args)``.
Errors caused by the user's input (:class:`medlens.errors.MedlensError`) print one line and
exit with code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from medlens.errors import MedlensError

COMMANDS = ["train", "explain", "demo"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medlens",
        description="Explain medical deep-learning models and measure how far each explanation can be trusted.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"medlens.cli.{name.replace('-', '_')}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except MedlensError as err:
        print(f"medlens: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medlens: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
