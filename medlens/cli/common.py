"""Helpers shared by the CLI commands: one grammar for shared flags and options.

Every command spells a shared concept the same way (:func:`add_flags`):

``--limit N``            use only the first N cases
``--option NAME=VALUE``  a method option, repeatable; ``METHOD.NAME=VALUE`` scopes it to one
                         method where a command runs several
``--batch-size N``       inputs the engine evaluates at once (as ``batch_size=`` in the API)
``--memory-mb MB``       memory the engine may use for one chunk and the readers their decoding
                         limit (as ``memory_mb=``); ``memory`` alone: the readers' limit only
``--seed N``             the seed of every random choice
``--quiet``              no progress bars or progress lines
``--multi-label``        the model has one sigmoid per finding (as the model file's ``meta["multilabel"]``)

and every command's ``--help`` ends with examples (:func:`command_parser`).
"""

from __future__ import annotations

import argparse
import ast
from typing import Any

from medlens.errors import MedlensError

SHARED_FLAGS = ("limit", "option", "budget", "memory", "seed", "quiet", "multi-label")


def command_parser(sub: "argparse._SubParsersAction", name: str, *, help: str, doc: str | None,
                   examples: list[str]) -> argparse.ArgumentParser:
    """A subcommand parser whose ``--help`` shows the module docstring and worked examples."""
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples)
    p = sub.add_parser(
        name, help=help, description=doc, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    # also after the command name; SUPPRESS keeps `medlens --debug CMD` from being overwritten
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                   help="show the traceback of an internal error (or set MEDLENS_DEBUG=1)")
    return p


def add_out_folder(p: argparse.ArgumentParser, *, help: str = "output folder", **kwargs: Any) -> None:
    """``--out FOLDER``: a command that writes a folder says so, and an ``--out`` naming an
    existing file is then refused before any work (:func:`medlens.cli.refuse_file_out`)."""
    kwargs.setdefault("required", "default" not in kwargs)
    p.add_argument("--out", help=help, **kwargs)
    p.set_defaults(out_is_folder=True)


def add_flags(p: argparse.ArgumentParser, *flags: str, seed_default: int = 0) -> None:
    """Add the shared flags ``flags`` (names from :data:`SHARED_FLAGS`) with their one meaning."""
    unknown = set(flags) - set(SHARED_FLAGS)
    if unknown:
        raise ValueError(f"unknown shared flags {sorted(unknown)}")
    if "limit" in flags:
        p.add_argument("--limit", type=_positive_int, default=None, metavar="N", help="use only the first N cases")
    if "option" in flags:
        p.add_argument("--option", action="append", metavar="NAME=VALUE",
                       help="method option, repeatable (n_steps=32); METHOD.NAME=VALUE for one method only")
    if "budget" in flags:
        p.add_argument("--batch-size", type=_positive_int, default=None, metavar="N",
                       help="inputs the engine evaluates at once (default: from --memory-mb)")
    if "budget" in flags or "memory" in flags:
        engine = "memory the engine may use for one chunk, and " if "budget" in flags else ""
        p.add_argument("--memory-mb", type=_positive_float, default=None, metavar="MB",
                       help=f"{engine}the most a reader may decode from one file "
                            "(default: a quarter of free memory, at most 1 GiB on a CPU)")
    if "seed" in flags:
        p.add_argument("--seed", type=int, default=seed_default, help=f"seed of every random choice (default: {seed_default})")
    if "quiet" in flags:
        p.add_argument("--quiet", action="store_true", help="no progress output (bars and progress lines); results are still printed")
    if "multi-label" in flags:
        p.add_argument("--multi-label", action="store_true",
                       help="the model has one sigmoid per finding (e.g. ChestMNIST's 14): each finding's probability is "
                            "the sigmoid of its logit, not a softmax across findings (a model file can say so itself: "
                            "meta multilabel)")


def method_options(pairs: list[str] | None, methods: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``--option`` values per method: ``NAME=VALUE`` for all, ``METHOD.NAME=VALUE`` for one.

    With ``methods=None`` (a one-method command) the result is ``{"": options}``.
    An unscoped option goes only to the methods that have it (validated by the use case);
    a scoped option names a method of the run.
    """
    from medlens.app.options import scope_options

    return scope_options(parse_options(pairs), methods)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value


_SWITCH_WORDS = {"true": True, "yes": True, "false": False, "no": False}


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["n_steps=32", "abs=True", "baseline=blur"]`` -> ``{"n_steps": 32, "abs": True, "baseline": "blur"}``;
    ``true``/``yes``/``false``/``no`` in any case are the bools a shell user means."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise MedlensError(f"option {pair!r} must look like NAME=VALUE")
        key, raw = pair.split("=", 1)
        if raw.strip().lower() in _SWITCH_WORDS:
            value: Any = _SWITCH_WORDS[raw.strip().lower()]
        else:
            try:
                value = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                value = raw
        options[key.strip()] = value
    return options
