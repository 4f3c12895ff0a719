"""Helpers shared by the CLI commands: one grammar for shared flags, staged output, options.

Every command spells a shared concept the same way (:func:`add_flags`):

``--limit N``            use only the first N cases
``--option NAME=VALUE``  a method option, repeatable; ``METHOD.NAME=VALUE`` scopes it to one
                         method where a command runs several
``--batch-size N``       inputs the engine evaluates at once (as ``batch_size=`` in the API)
``--memory-mb MB``       memory the engine may use for one chunk (as ``memory_mb=``)
``--seed N``             the seed of every random choice
``--quiet``              no progress bars or progress lines

and every command's ``--help`` ends with examples (:func:`command_parser`).
"""

from __future__ import annotations

import argparse
import ast
import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from medlens.errors import MedlensError

SHARED_FLAGS = ("limit", "option", "budget", "seed", "quiet")


def command_parser(sub: "argparse._SubParsersAction", name: str, *, help: str, doc: str | None,
                   examples: list[str]) -> argparse.ArgumentParser:
    """A subcommand parser whose ``--help`` shows the module docstring and worked examples."""
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples)
    return sub.add_parser(
        name, help=help, description=doc, epilog=epilog, formatter_class=argparse.RawDescriptionHelpFormatter
    )


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
        p.add_argument("--memory-mb", type=_positive_float, default=None, metavar="MB",
                       help="memory the engine may use for one chunk (default: a quarter of free memory, at most 1 GiB on a CPU)")
    if "seed" in flags:
        p.add_argument("--seed", type=int, default=seed_default, help=f"seed of every random choice (default: {seed_default})")
    if "quiet" in flags:
        p.add_argument("--quiet", action="store_true", help="no progress output (bars and progress lines); results are still printed")


def budget_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``batch_size=`` and ``memory_mb=`` for the API, from ``--batch-size`` / ``--memory-mb``."""
    return {"batch_size": getattr(args, "batch_size", None), "memory_mb": getattr(args, "memory_mb", None)}


def method_options(pairs: list[str] | None, methods: list[str] | None = None) -> dict[str, dict[str, Any]]:
    """``--option`` values per method: ``NAME=VALUE`` for all, ``METHOD.NAME=VALUE`` for one.

    With ``methods=None`` (a one-method command) the result is ``{"": options}``.
    An unscoped option goes only to the methods that have it (validated by the caller);
    a scoped option names a method of the run.
    """
    scoped: dict[str, dict[str, Any]] = {"": {}}
    for pair in pairs or []:
        key = pair.split("=", 1)[0]
        if "." in key:
            method, rest = pair.split(".", 1)
            method = method.strip()
            if methods is not None and method not in methods:
                raise MedlensError(f"--option {pair!r} names method {method!r}, which this run does not use")
            scoped.setdefault(method, {}).update(parse_options([rest]))
        else:
            scoped[""].update(parse_options([pair]))
    return scoped


def options_per_metric(pairs: list[str] | None) -> dict[str, dict]:
    """``METRIC.NAME=VALUE`` pairs as ``{metric: {name: value}}``."""
    scoped = method_options(pairs)
    if scoped.pop(""):
        raise MedlensError("--metric-option must name its metric: METRIC.NAME=VALUE (deletion_auc.steps=10)")
    return scoped


def options_per_method(pairs: list[str] | None, methods: object) -> dict[str, dict]:
    """``--option`` values per method: unscoped ones go to every method that has the option."""
    from medlens.attribution.explain import methods as registered_methods
    from medlens.attribution.registry import get_method
    from medlens.errors import MedlensError

    names = registered_methods() if methods == "all" else list(methods)
    scoped = method_options(pairs, names)
    shared = scoped.pop("")
    for option in shared:
        takers = [m for m in names if option in get_method(m).options()]
        if not takers:
            raise MedlensError(f"none of the methods {', '.join(names)} has an option {option!r}")
        for m in takers:
            scoped.setdefault(m, {}).setdefault(option, shared[option])
    return scoped


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


@contextmanager
def staged_output(out_dir: str | Path) -> Iterator[Path]:
    """Write into a hidden staging folder; move the files into ``out_dir`` only on success.

    A command that fails half-way leaves no partial output behind.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        for item in staging.iterdir():
            dest = out_dir / item.name
            if dest.is_dir():
                shutil.rmtree(dest)
            item.replace(dest)
    except OSError:
        if created:
            shutil.rmtree(out_dir, ignore_errors=True)
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def parse_options(pairs: list[str] | None) -> dict[str, Any]:
    """``["n_steps=32", "abs=True", "baseline=blur"]`` -> ``{"n_steps": 32, "abs": True, "baseline": "blur"}``."""
    options: dict[str, Any] = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise MedlensError(f"option {pair!r} must look like NAME=VALUE")
        key, raw = pair.split("=", 1)
        try:
            value = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            value = raw
        options[key.strip()] = value
    return options


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, default=_jsonable), encoding="utf-8")


def _jsonable(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.tolist() if value.numel() <= 64 else f"tensor{tuple(value.shape)}"
    if isinstance(value, Path):
        return str(value)
    return repr(value)
