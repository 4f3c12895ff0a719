"""A notes file as a user exports it: a CSV with ``text`` and ``label`` columns, written by the csv module."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable, Sequence


def write_notes(path: str | Path, rows: Iterable[Sequence[str]]) -> Path:
    """Write ``rows`` of ``(text, label)`` under a ``text,label`` header; returns ``path``."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["text", "label"])
        writer.writerows(rows)
    return Path(path)
