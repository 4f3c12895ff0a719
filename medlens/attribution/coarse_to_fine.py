"""Coarse-to-fine occlusion: coarse windows first, then finer windows only where the drop is largest.

Plain occlusion spends the same number of model evaluations on every part of the input, so on an
expensive 3D network its affordable windows are coarse everywhere (27 half-size windows on a 64^3
volume through a 3D ResNet-18). Most of the volume, though, does not matter to the decision. This
variant refines a tree of non-overlapping windows, best first:

* the root window is the whole input; a window's children halve it along every spatial dimension
  that is at least twice ``min_window`` (``2^d`` children: the octants of a volume);
* the children of the root are evaluated first; then, while the evaluations allow, the evaluated
  window with the largest absolute score drop that can still be split is replaced by its
  children (windows whose occlusion changes nothing are never refined);
* an element's attribution is the drop per occluded element of the finest evaluated window
  covering it, times the element count of the finest window reached: the drop that one finest
  window would cause if drops added up over its elements. Where a window was refined, its
  children replace it, so elements outside what matters are not credited with a neighbour's drop.

The result costs at most ``evaluations`` model evaluations per sample (plus one for the
unoccluded input) whatever the input size, and resolves the parts that matter at the finest level.

Each batch of windows goes through incremental inference (:mod:`medlens.attribution.incremental`:
only the part of the first layers that a window changes is recomputed) when the counted costs
say it is cheaper; one chain is planned for the finest window and cut shorter for coarser ones.
Given ``spend`` (FLOPs at the rate of :func:`medlens.core.cost.forward_cost`) instead of a number
of evaluations, the tree is refined while the counted cost of its evaluations fits: a window
evaluated incrementally costs the full pass minus the counted saving of its chain, so a small
window costs less than a large one (counted from the shapes, never timed).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from medlens.attribution.incremental import (Chain, ThreadsPrepared, counted_costs, narrow, plan, prepare,
                                             short_circuit, window_chunk)
from medlens.core import engine
from medlens.core import layers as by_rank
from medlens.core.hooks import CONV_TYPES
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


def _has_local_layers(model: nn.Module) -> bool:
    local = CONV_TYPES + by_rank.MAX_POOL_TYPES + by_rank.AVG_POOL_TYPES
    return any(isinstance(m, local) for m in model.modules())


def _size(cell: Cell) -> tuple[int, ...]:
    return tuple(b - a for a, b in cell)


def _index(cell: Cell) -> tuple[slice, ...]:
    return tuple(slice(a, b) for a, b in cell)


def coarse_to_fine_occlusion(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    evaluations: int | None = None,
    spend: float | None = None,
    baseline: BaselineLike = 0.0,
    min_window: int | Sequence[int] | None = None,
    incremental: bool = True,
    budget: Budget = Budget(),
) -> tuple[torch.Tensor, dict]:
    """Coarse-to-fine occlusion map ``(B, 1, *spatial)`` at most ``evaluations`` model evaluations
    per sample, or what fits in ``spend`` counted FLOPs per sample (the unoccluded pass and the
    incremental chain's planning passes included); at least the root's children are evaluated.
    The windows span all channels. ``min_window`` defaults to 1/16 of each size.

    Returns the map and extras ``{"windows": evaluated windows per sample (the most over the
    samples), "incremental_windows": how many of them went through incremental inference,
    "spent_gflop": the counted cost per sample (the most over the samples), "finest_window": the
    finest window size reached, "finest_share": the smallest share, over the samples, of the
    input resolved to that window, "cells": per sample, the final windows and their drops,
    "history": per sample, every evaluated window and its drop, in evaluation order}``.
    """
    from medlens.core.cost import forward_cost
    from medlens.core.op_cost import forward_seconds

    if evaluations is None and spend is None:
        raise ValueError("give evaluations or spend")
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
    root: Cell = tuple((0, n) for n in spatial)
    used_total, finest, finest_share, all_cells, all_history = 0, tuple(spatial), 1.0, [], []
    full = float(forward_cost(model, x[:1])) if spend is not None else 0.0  # (only a spend is counted)
    # (a model without convolutions or poolings has no chain: spare the planning passes)
    fine_chain = plan(model, x, floor, budget) if incremental and _has_local_layers(model) else None
    chains: dict[tuple[int, ...], Chain | None] = {}
    device = engine.model_device(model)

    def chain_for(size: tuple[int, ...]) -> Chain | None:
        if fine_chain is not None and size not in chains:
            chains[size] = narrow(fine_chain, x, size)
        return chains.get(size)

    costs: dict[tuple[int, ...], float] = {}

    def counted(cell: Cell) -> float:
        """Counted FLOPs of one evaluation of ``cell``: the full pass less the chain's saving
        (it depends only on the window's size, so each size is counted once)."""
        size = _size(cell)
        if size not in costs:
            chain = chain_for(size)
            if chain is None or not full:
                costs[size] = full
            else:
                plain_s, incremental_s = counted_costs(chain, x, size)
                whole_s = forward_seconds(model, x[:1])
                costs[size] = full * max(0.0, whole_s - plain_s + incremental_s) / whole_s
        return costs[size]

    # planning the chain runs every sample once, and the first sample once more
    planning = full * (len(x) + 1) if fine_chain is not None else 0.0
    incremental_total, spent_total = 0, 0.0
    for s in range(b):
        sample_target = target.take(torch.tensor([s]))
        through_chain = [0]  # windows of this sample evaluated incrementally

        def evaluate(cells: list[Cell | None]) -> list[float]:
            scores: list[float] = []
            size = max((_size(cell) for cell in cells if cell is not None), key=math.prod)
            chain = chain_for(size)
            current = ThreadsPrepared()  # chunks run side by side: each thread its own

            def build(start, stop):
                rows = x[s : s + 1].repeat(stop - start, *([1] * (x.ndim - 1)))
                for r, cell in enumerate(cells[start:stop]):
                    if cell is not None:
                        rows[(r, slice(None), *_index(cell))] = reference[(s, slice(None), *_index(cell))]
                if chain is not None:
                    regions = [None if cell is None else list(cell) for cell in cells[start:stop]]
                    current.value = prepare(chain, rows, torch.full((stop - start,), s, dtype=torch.long), regions)
                return rows

            def consume(start, stop, outputs, grads, aux):
                scores.extend(sample_target.take(torch.zeros(stop - start, dtype=torch.long))(outputs).tolist())

            with short_circuit([level.module for level in chain.levels] if chain is not None else [],
                               lambda: current.value):
                engine.run(model, len(cells), build, mode="forward", consume=consume, parallel=True,
                           budget=budget if chain is None else window_chunk(chain, x, len(cells), budget, device))
            through_chain[0] += sum(cell is not None for cell in cells) if chain is not None else 0
            return scores

        first_cells = _children(root, floor) or [root]
        first = evaluate([None, *first_cells])  # the unoccluded input, then the root's children
        original = first[0]
        drops = {cell: original - v for cell, v in zip(first_cells, first[1:])}  # the current leaves
        history = dict(drops)  # every evaluated window's drop, in order
        used = len(first_cells)
        spent = (planning if s == 0 else 0.0) + full + sum(counted(cell) for cell in first_cells)
        while True:
            splittable = [cell for cell in drops if _children(cell, floor)]
            if not splittable:
                break
            parent = max(splittable, key=lambda cell: abs(drops[cell]))
            children = _children(parent, floor)
            cost = sum(counted(cell) for cell in children)
            if (evaluations is not None and used + len(children) > evaluations) or (
                    spend is not None and spent + cost > spend):
                break
            scores = evaluate(children)
            used += len(children)
            spent += cost
            del drops[parent]
            drops.update({cell: original - v for cell, v in zip(children, scores)})
            history.update({cell: original - v for cell, v in zip(children, scores)})
        finest_volume = min(_volume(cell) for cell in drops)
        sample_map = x.new_zeros(spatial)
        for cell, drop in drops.items():
            sample_map[_index(cell)] = drop / _volume(cell) * finest_volume
        values[s, 0] = sample_map
        finest_cell = min(drops, key=_volume)
        finest = tuple(b2 - a for a, b2 in finest_cell)
        resolved = sum(_volume(cell) for cell in drops if _volume(cell) == finest_volume)
        finest_share = min(finest_share, resolved / math.prod(spatial))
        used_total = max(used_total, used)
        spent_total = max(spent_total, spent)
        incremental_total = max(incremental_total, through_chain[0])
        all_cells.append(drops)
        all_history.append(history)
    return values, {"windows": used_total, "incremental_windows": incremental_total,
                    "spent_gflop": round(spent_total / 1e9, 1), "finest_window": finest,
                    "finest_share": finest_share, "cells": all_cells, "history": all_history}
