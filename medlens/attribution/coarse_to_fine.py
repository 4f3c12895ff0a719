"""Coarse-to-fine occlusion: coarse windows first, then finer windows only where the coarse map is high.

Plain occlusion spends the same number of model evaluations on every part of the input, so on an
expensive 3D network its affordable windows are coarse everywhere (27 half-size windows on a 64^3
volume through a 3D ResNet-18). Most of the volume, though, does not matter to the decision. This
variant evaluates a pyramid of non-overlapping windows:

* level 1 splits every spatial dimension in two (``2^d`` windows: the octants of a volume);
* each next level halves the windows of the ``k`` cells with the largest score drop per occluded
  element at the level above (``k`` chosen so that the evaluations left are spread over the
  levels left), down to windows of ``1/16`` of each size (at least ``min_window``);
* an element's attribution is the sum over levels of the drop per occluded element of the
  window covering it at that level (an element whose window was not refined keeps its parent's
  value at the finer levels), times the element count of the finest window: the drop one finest
  window would cause, if drops added up over its elements.

The result costs ``evaluations`` model evaluations per sample (plus one for the unoccluded input)
whatever the input size, and resolves the parts that matter at the finest level.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from medlens.core import engine
from medlens.core.baselines import BaselineLike, resolve_baseline
from medlens.core.engine import Budget
from medlens.core.targets import Target

Cell = tuple[tuple[int, int], ...]  # [start, stop) per spatial dimension


def _children(cell: Cell, min_window: Sequence[int]) -> list[Cell]:
    halves = []
    for (a, b), m in zip(cell, min_window):
        if b - a >= 2 * m:
            mid = (a + b) // 2
            halves.append([(a, mid), (mid, b)])
        else:
            halves.append([(a, b)])
    out: list[Cell] = [()]
    for options in halves:
        out = [c + (o,) for c in out for o in options]
    return out if len(out) > 1 else []


def _volume(cell: Cell) -> int:
    return math.prod(b - a for a, b in cell)


def levels_for(spatial: Sequence[int], min_window: Sequence[int]) -> int:
    """How many halvings there are until every window is at ``min_window``."""
    return max(max(0, int(math.floor(math.log2(max(1, n // m))))) for n, m in zip(spatial, min_window))


def coarse_to_fine_occlusion(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    evaluations: int,
    baseline: BaselineLike = 0.0,
    min_window: int | Sequence[int] | None = None,
    budget: Budget = Budget(),
) -> tuple[torch.Tensor, dict]:
    """Coarse-to-fine occlusion map ``(B, 1, *spatial)`` at about ``evaluations`` model evaluations
    per sample (the windows span all channels).

    Returns the map and extras ``{"windows": evaluated windows per sample, "finest_window": the
    finest window size reached, "finest_share": the smallest share, over the samples, of the
    input resolved to that window}``.
    """
    b, c, *spatial = x.shape
    d = len(spatial)
    if min_window is None:
        floor = tuple(max(1, n // 16) for n in spatial)
    elif isinstance(min_window, int):
        floor = (min_window,) * d
    else:
        floor = tuple(min_window)
    reference = resolve_baseline(x, baseline)
    values = x.new_zeros((b, 1, *spatial))
    n_levels = levels_for(spatial, floor)
    root: Cell = tuple((0, n) for n in spatial)
    used_total, finest, finest_share = 0, tuple(spatial), 1.0
    for s in range(b):
        sample_target = target.take(torch.tensor([s]))

        def evaluate(cells: list[Cell]) -> list[float]:
            scores: list[float] = []

            def build(start, stop):
                rows = x[s : s + 1].repeat(stop - start, *([1] * (x.ndim - 1)))
                for r, cell in enumerate(cells[start:stop]):
                    if cell is not None:
                        index = (r, slice(None), *(slice(a, b2) for a, b2 in cell))
                        rows[index] = reference[(s, slice(None), *(slice(a, b2) for a, b2 in cell))]
                return rows

            def consume(start, stop, outputs, grads, aux):
                scores.extend(sample_target.take(torch.zeros(stop - start, dtype=torch.long))(outputs).tolist())

            engine.run(model, len(cells), build, mode="forward", consume=consume, budget=budget)
            return scores

        level_cells = _children(root, floor) or [root]
        first = evaluate([None, *level_cells])  # the unoccluded input, then level 1
        original, drops = first[0], [first[0] - v for v in first[1:]]
        used = len(level_cells)
        density = {cell: drop / _volume(cell) for cell, drop in zip(level_cells, drops)}
        layers = [dict(density)]  # per level: cell -> drop per element (refined cells only)
        frontier = level_cells
        for level in range(2, n_levels + 1):
            left = evaluations - used
            if left <= 0:
                break
            ranked = sorted(frontier, key=lambda cell: -abs(density[cell]))
            per_parent = len(_children(ranked[0], floor)) or 1
            k = max(1, left // (per_parent * (n_levels - level + 1)))
            chosen_parents = [cell for cell in ranked[:k] if _children(cell, floor)]
            new_cells = [child for cell in chosen_parents for child in _children(cell, floor)]
            if not new_cells:
                break
            new_cells = new_cells[: max(1, left)]
            scores = evaluate(new_cells)
            used += len(new_cells)
            layer = {}
            for cell, score in zip(new_cells, scores):
                layer[cell] = (original - score) / _volume(cell)
                density[cell] = layer[cell]
            layers.append(layer)
            frontier = new_cells
        # sum over levels of the drop density of the finest evaluated window at or above the level
        level_map = x.new_zeros(spatial)
        total = x.new_zeros(spatial)
        for layer in layers:
            for cell, value in layer.items():
                level_map[tuple(slice(a, b2) for a, b2 in cell)] = value  # refined cells overwrite their parent
            total += level_map
        finest_cell = min((cell for layer in layers for cell in layer), key=_volume)
        finest = tuple(b2 - a for a, b2 in finest_cell)
        resolved = sum(_volume(cell) for layer in layers for cell in layer if _volume(cell) == _volume(finest_cell))
        finest_share = min(finest_share, resolved / math.prod(spatial))
        values[s, 0] = total * _volume(finest_cell)
        used_total = max(used_total, used)
    return values, {"windows": used_total, "finest_window": finest, "finest_share": finest_share}
