"""The pieces every README table is made of (``benchmarks/readme_tables.py`` and the ``_tables_*``
modules): numbers formatted one way, missing ones as ``n/a``, and Markdown tables."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def num(v, digits: int = 3) -> str:
    """``v`` with ``digits`` decimals; ``n/a`` for None (a number JSON stored as null)."""
    return "n/a" if v is None else f"{v:.{digits}f}"


def pct(v, digits: int = 0) -> str:
    """A share as a percentage (``0.123`` -> ``12%``)."""
    return "n/a" if v is None else f"{100 * v:.{digits}f}%"


def shape(dims: Sequence[int]) -> str:
    """``[64, 64, 48]`` -> ``64x64x48``."""
    return "x".join(str(d) for d in dims)


def table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown table (each cell as ``str``)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
