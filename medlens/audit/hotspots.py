"""Where each case's own map points off its evidence, and the cases a strategy's region misses.

A SpRAy cluster is tested at the region its *mean* map points at
(:func:`medlens.audit.intervention.cluster_region`). A member whose own map points somewhere
else off its evidence is not tested for that place: on the design grids of
``benchmarks/audit_calibration.py``, 19 cases carrying a marker sat in a strategy whose mean map
pointed at an interior cell, so the marker was never removed for them. This module finds such
cases and groups them by the place they point at, so that each group is tested like a cluster
(the same removal test, in the same Holm family, :mod:`medlens.audit.strategies`).

* A case's *hotspot* (:func:`hotspots`): the summary cell, among the cells that hold none of
  its own possible evidence, on which its relevance distribution ``p`` exceeds the uniform
  ``1/G`` the most (``argmax max(p - 1/G, 0)`` over its evidence-free cells); none when its
  relevance exceeds uniform on none of them.
* The *missed* members of a candidate cluster: those with a hotspot outside the cluster's
  region (:func:`missed_groups`). They are grouped across the class's candidate clusters by
  hotspot cell; every group of at least ``min_size`` cases is a *hotspot group*.

Members of clusters that are no candidates (they concentrate nothing off the evidence) are not
regrouped: single maps always have some largest evidence-free cell, and testing every such
cell would spread the family-wise level over tests of noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from medlens.core import layers as by_rank

__all__ = ["hotspot_region", "hotspots", "missed_groups"]


def hotspots(dist: torch.Tensor, evidence: torch.Tensor) -> torch.Tensor:
    """Each case's hotspot cell off its own evidence.

    Parameters
    ----------
    dist : torch.Tensor
        ``(n, G)`` relevance distributions (rows sum to 1).
    evidence : torch.Tensor
        ``(n, G)`` 1 where the cell may hold the case's own evidence.

    Returns
    -------
    torch.Tensor
        ``(n,)`` long: the flat cell, or -1 when the case concentrates nothing off its evidence.
    """
    excess = (dist.to(torch.float64) - 1.0 / dist.shape[1]).clamp(min=0) * (evidence == 0)
    best = excess.max(1)
    return torch.where(best.values > 0, best.indices, torch.full_like(best.indices, -1))


def missed_groups(spots: torch.Tensor, regions: Sequence[tuple[torch.Tensor, Sequence[int]]], min_size: int
                  ) -> list[tuple[int, list[int]]]:
    """The members that their clusters' regions miss, grouped by hotspot.

    Parameters
    ----------
    spots : torch.Tensor
        ``(n,)`` hotspot of each case of one predicted class (:func:`hotspots`).
    regions : sequence of (indices, cells)
        For each candidate cluster of the class: its members (rows of ``spots``) and its region.
    min_size : int
        Smallest group kept.

    Returns
    -------
    list of (cell, rows)
        Groups of at least ``min_size`` members whose hotspot is ``cell`` and lies outside their
        own cluster's region, rows sorted; largest group first, ties by cell.
    """
    groups: dict[int, list[int]] = {}
    for rows, cells in regions:
        inside = {int(c) for c in cells}
        for row in (int(r) for r in rows):
            spot = int(spots[row])
            if inside and spot >= 0 and spot not in inside:
                groups.setdefault(spot, []).append(row)
    kept = [(cell, sorted(rows)) for cell, rows in groups.items() if len(rows) >= min_size]
    return sorted(kept, key=lambda g: (-len(g[1]), g[0]))


def hotspot_region(cell: int, off: torch.Tensor, grid: Sequence[int]) -> tuple[int, ...]:
    """The cells a hotspot group is tested at: its hotspot and the neighbouring cells (one cell,
    all axes and diagonals) that are off the group's evidence.

    A marker straddles cell borders, and a map can peak on one of its edges rather than on the
    cell that holds most of it, so the whole neighbourhood is removed, as far as it holds none
    of the group's evidence.

    Parameters
    ----------
    cell : int
        The flat hotspot cell.
    off : torch.Tensor
        ``(G,)`` 1 where the cell is not evidence for the group.
    grid : sequence of int

    Returns
    -------
    tuple of int
        Sorted flat cells (the hotspot always among them).
    """
    grid = tuple(int(g) for g in grid)
    spot = torch.zeros(int(torch.tensor(grid).prod()), dtype=torch.float32)
    spot[int(cell)] = 1.0
    pool = by_rank.max_pool_fn(len(grid))
    near = pool(spot.reshape(1, 1, *grid), 3, stride=1, padding=1).reshape(-1) > 0.5  # (G,)
    chosen = near & (off.reshape(-1) > 0)
    chosen[int(cell)] = True
    return tuple(int(i) for i in torch.nonzero(chosen).reshape(-1))
