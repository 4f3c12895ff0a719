"""The leaderboard's results file: its layout, its lock, appending, reading and repairing.

File layout (``results.jsonl``)::

    {"type": "config", ...settings...}
    {"type": "result", "sample": 0, "method": "gradient", "kind": "method", "label": 1,
     "target": 1, "metrics": {"deletion_auc": 0.21, ...}, "curves": {"deletion_auc": [...]}}
    {"type": "result", "sample": 0, "method": "model:marker", "kind": "model", ...}

Lines are appended as they are computed (flushed and fsynced); a run killed while writing
leaves a truncated last line, which :func:`repair` drops and :func:`read_results` ignores.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from medlens.core.files import write_csv, write_json
from medlens.errors import FileFormatError

__all__ = [
    "BASELINE_PREFIX",
    "MODEL_ENTRY",
    "RESULTS_FILE",
    "TIMINGS_FILE",
    "append",
    "clean",
    "exclusive",
    "read_results",
    "repair",
    "write_summary",
]

RESULTS_FILE = "results.jsonl"
TIMINGS_FILE = "timings.jsonl"
LOCK_FILE = ".lock"
FORMAT_VERSION = 1
BASELINE_PREFIX = "baseline:"
MODEL_ENTRY = "model:marker"
_DIGITS = 10  # significant digits stored: absorbs last-bit noise, far below any reported precision


def clean(value: Any) -> Any:
    """JSON-ready value: floats rounded to ``_DIGITS`` significant digits, NaN as ``None``."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, float):
        return None if not math.isfinite(value) else float(f"{value:.{_DIGITS}g}")
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    return value


def repair(path: Path) -> None:
    """Drop a truncated last line (a run killed while writing)."""
    with open(path, "rb+") as fh:
        data = fh.read()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            fh.seek(cut)
            fh.truncate()


def read_results(path: str | os.PathLike) -> tuple[dict, list[dict]]:
    """The config and the result records of a results file (a truncated last line is ignored).

    Raises
    ------
    FileFormatError
        The file is missing, does not start with a config line, or holds a corrupt line.
    """
    p = Path(path)
    if p.is_dir():
        p = p / RESULTS_FILE
    if not p.exists():
        raise FileFormatError(f"results file not found: {p}")
    data = p.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
    lines = data.decode("utf-8").splitlines()
    if not lines:
        raise FileFormatError(f"{p} is empty")
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise FileFormatError(f"{p} line {number} is not valid JSON ({err.msg})") from err
    config = records[0]
    if config.get("type") != "config" or config.get("format") != FORMAT_VERSION:
        raise FileFormatError(f"{p} is not a medlens results file (no config line)")
    return config, [r for r in records[1:] if r.get("type") == "result"]


def append(fh, records: Iterable[dict]) -> None:
    """Append ``records`` as strict JSON lines to the open file ``fh``, flushed and fsynced."""
    # json.dumps with its default separators, strict: the bytes of a resumed file must equal those
    # of an uninterrupted run, including lines written by earlier versions.
    fh.write("".join(json.dumps(r, allow_nan=False) + "\n" for r in records))
    fh.flush()
    os.fsync(fh.fileno())


@contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold an advisory lock on ``out`` so two runs never append to one results file
    (:func:`medlens.core.files.folder_lock`: released when the process dies, its file removed)."""
    from medlens.core.files import folder_lock

    with folder_lock(out, name=LOCK_FILE,
                     busy=f"another medlens evaluation is writing to {out}; wait for it or use another folder"):
        yield


SUMMARY_COLUMNS = ("method", "kind", "metric", "n", "mean", "ci_low", "ci_high")


def write_summary(out: str | os.PathLike, summary: dict) -> list[Path]:
    """Write ``summary.json`` and ``summary.csv`` into ``out`` (atomically); return the paths."""
    out = Path(out)
    rows = [{k: r[k] for k in SUMMARY_COLUMNS} for r in summary["rows"]]
    return [write_json(out / "summary.json", summary), write_csv(out / "summary.csv", rows, SUMMARY_COLUMNS)]
