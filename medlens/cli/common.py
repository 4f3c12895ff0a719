"""Helpers shared by the CLI commands: staged output folders, option parsing."""

from __future__ import annotations

import ast
import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from medlens.errors import MedlensError


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
