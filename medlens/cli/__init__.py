"""The ``medlens`` command line.

Each subcommand lives in its own module of this package with ``add_parser(subparsers)``
(which sets ``run`` as the parser's default); modules are discovered, so a new command is a new
module and nothing else.
Errors caused by the user's input (:class:`medlens.errors.MedlensError`) print one line and
exit with code 2, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

from medlens.errors import MedlensError



def command_modules() -> list[str]:
    """Names of the modules in this package that define a subcommand."""
    names = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "add_parser"):
            names.append(info.name)
    return names


class OneLineParser(argparse.ArgumentParser):
    """A parser whose usage errors are one line and exit 2, like every other medlens error."""

    def error(self, message: str):  # noqa: D102 - argparse's hook
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="medlens",
        description="Explain medical deep-learning models and measure how far each explanation can be trusted.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    for name in command_modules():
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, or a usage error already printed on one line
        return int(done.code or 0)
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
