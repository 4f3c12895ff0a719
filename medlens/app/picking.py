"""Choosing the example cases a report shows."""

from __future__ import annotations

from typing import Sequence


def round_robin(groups: Sequence[Sequence[int]], n: int) -> list[int]:
    """Up to ``n`` items taken in turn from each group (the first of each, then the second...).

    Used so that every class (or every kind of case) appears among the few examples shown.
    """
    picked: list[int] = []
    i = 0
    while len(picked) < n and any(i < len(g) for g in groups):
        for g in groups:
            if i < len(g) and len(picked) < n:
                picked.append(g[i])
        i += 1
    return picked
