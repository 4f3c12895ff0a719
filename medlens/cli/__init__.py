"""The ``medlens`` command line.

Each subcommand lives in its own module of this package with ``add_parser(subparsers)``
(which sets ``run`` as the parser's default); modules are discovered, so a new command is a new
module and nothing else.
Exit codes, for every command:

* 0: all done;
* 2: bad usage or bad input (:class:`medlens.errors.MedlensError`, argparse's usage errors): one
  line naming the problem, no traceback;
* 3: some cases of a folder or data set failed: the others were written, the failures are listed
  in the output and on stderr (the command's ``run`` returns :data:`SOME_FAILED`);
* 1: an internal error, a bug: one line saying so and how to see the traceback (``--debug``
  anywhere on the command line, or ``MEDLENS_DEBUG=1``);
* 130: interrupted.

``--out`` naming an existing file is refused before any work (:func:`refuse_file_out`).
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import os
import sys

from medlens.errors import InputError, MedlensError

#: Exit code of a run where some cases of a folder or data set failed and the others were written.
SOME_FAILED = 3
#: Exit code of an internal error (a bug).
BUG = 1
#: Environment variable that, set to 1, shows the traceback of an internal error.
DEBUG_ENV = "MEDLENS_DEBUG"


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
        epilog="exit codes: 0 done; 2 bad usage or input; 3 some cases failed (the others written); "
               f"1 internal error (--debug or {DEBUG_ENV}=1 shows its traceback)",
    )
    parser.add_argument("--debug", action="store_true", help="show the traceback of an internal error")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=OneLineParser)
    for name in command_modules():
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
    return parser


#: Flags whose value may start with a minus sign: a CT window centred below 0 HU (lung: -600,1500),
#: which argparse would take for an option ("expected one argument").
SIGNED_VALUE_FLAGS = ("--window",)


def signed_values(argv: list[str]) -> list[str]:
    """``--window -600,1500`` as ``--window=-600,1500``, so that argparse reads it as the value."""
    out: list[str] = []
    for token in argv:
        if out and out[-1] in SIGNED_VALUE_FLAGS and token[:1] == "-" and token[1:2].isdigit():
            out[-1] = f"{out[-1]}={token}"
        else:
            out.append(token)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(signed_values(list(sys.argv[1:] if argv is None else argv)))
    except SystemExit as done:  # --help, or a usage error already printed on one line
        return int(done.code or 0)
    debug = bool(getattr(args, "debug", False)) or os.environ.get(DEBUG_ENV, "").strip() not in ("", "0")
    try:
        refuse_file_out(args)
        from medlens.app.library_warnings import one_line_warnings, quiet_libraries

        with quiet_libraries(debug), one_line_warnings(debug):
            return int(args.run(args) or 0)
    except MedlensError as err:
        print(f"medlens: error: {one_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medlens: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001 - the last line of defence: a bug, said in one line
        if debug:
            raise
        if out_of_memory(err):  # what was asked does not fit this machine: the request's size, not a bug
            print(f"medlens: error: not enough memory for what was asked ({one_line(err)[:160]}): ask for less (a "
                  "smaller --size, --batch-size or --memory-mb, fewer steps or samples in --option)", file=sys.stderr)
            return 2
        print(f"medlens: internal error (a bug in medlens, not in your input): {type(err).__name__}: {one_line(err)}; "
              f"run again with --debug (or {DEBUG_ENV}=1) to see the traceback", file=sys.stderr)
        return BUG


def out_of_memory(err: BaseException) -> bool:
    """Python's ``MemoryError``, or PyTorch's allocator refusing an allocation (a ``RuntimeError``)."""
    text = str(err)
    return isinstance(err, MemoryError) or isinstance(err, RuntimeError) and (
        "can't allocate memory" in text or "out of memory" in text.lower())


def one_line(err: BaseException) -> str:
    """The error's message on one line (its lines joined), or its kind when it has none."""
    return " ".join(str(err).split()) or type(err).__name__


def list_failures(failed: list[tuple[str, str]]) -> None:
    """The cases that failed, one line each on stderr (the command then exits :data:`SOME_FAILED`)."""
    for case, error in failed:
        print(f"medlens: {case} failed: {error}", file=sys.stderr)
    if failed:
        print(f"medlens: {len(failed)} case(s) failed; the others were written", file=sys.stderr)


def refuse_file_out(args: argparse.Namespace) -> None:
    """Refuse, before any work, an ``--out`` that names an existing file (every command writes a folder)."""
    out = getattr(args, "out", None)
    if getattr(args, "out_is_folder", False) and out and os.path.exists(out) and not os.path.isdir(out):
        raise InputError(f"--out {out} is an existing file, not a folder: name a folder for the results")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
