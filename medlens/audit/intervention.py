"""The causal half of the shortcut flag: remove what a strategy's maps point at, measure the change.

A map can sit on a marker the model ignores (an undertrained model's gradients are large on any
sharp edge), so where a cluster's relevance lies is not evidence that its predictions depend on
that place. This module measures the dependence inside the audited data, by intervention:

1. The *region* of a cluster (:func:`cluster_region`): the summary-grid cells off the evidence
   on which the cluster concentrates its relevance (the smallest set of such cells holding
   ``cover`` of its off-evidence concentrated relevance, see
   :mod:`medlens.audit.strategies`), widened by the off-evidence cells next to them that the
   cluster also concentrates on, so a marker that straddles a cell border is removed whole.
2. *Removal* (:func:`remove_region`): the region is replaced by the same place of a strongly
   blurred copy of the case (a Gaussian of 1/8 of each axis, the "blur" baseline of
   perturbation methods, Fong & Vedaldi 2017). A small sharp object (a tag, a marker) is
   smeared into its surroundings while the region keeps the case's own low-frequency content;
   a flat patch (a constant or local-mean fill) can itself look like a marker to a model trained
   with one, and a noise patch is far outside the training data (on the design grid both moved
   the predictions of removals *elsewhere* by up to 0.2 and 0.7).
3. The *change* of a case: its predicted-class probability before minus after the removal,
   one forward pass per case through :func:`medlens.core.checks.model_outputs` with the
   audit's fixed chunk size (both engines give the same numbers: the driver holds the model in
   both).
4. The *null* of a case (:func:`null_cells`): the same number of cells drawn at random among
   the case's own evidence-free cells away from the region (not in it, not next to it), removed
   the same way; ``n_draws`` draws per case, each from its own seeded generator
   (:func:`medlens.core.random.generator` of the audit's seed, the region and the case). It
   answers "does this place matter more to the case's prediction than as much evidence-free
   input elsewhere?".

The changes are stored in the audit's store keyed by the region and the draw, so
:func:`medlens.audit.run.analyse` re-reads them without the model; the test that compares the
members' changes with their nulls is in :mod:`medlens.audit.strategies`.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import nn

from medlens.core import layers as by_rank
from medlens.core.blur import blur_sigma_for, gaussian_blur
from medlens.core.checks import evaluation_mode, model_outputs
from medlens.core.engine import Budget, model_device
from medlens.core.random import generator
from medlens.core.targets import model_probabilities

__all__ = ["FILL", "ModelRemoval", "Removal", "StoredRemoval", "cell_mask", "cluster_region", "null_cells",
           "region_key", "remove_region"]

FILL = "blur8"  # the one fill; part of the stored key so another fill never reuses changes
BLUR_FRACTION = 1 / 8  # sigma of the fill's blur, per axis, as a fraction of the axis

#: ``removal(region cells, positions in the results) -> (n, 1 + n_draws) changes`` or ``None``
Removal = Callable[[tuple[int, ...], Sequence[int]], "torch.Tensor | None"]


def cluster_region(excess: torch.Tensor, off: torch.Tensor, grid: Sequence[int], cover: float) -> tuple[int, ...]:
    """The cells a cluster's off-evidence concentrated relevance points at.

    Parameters
    ----------
    excess : torch.Tensor
        ``(G,)`` the cluster's mean relevance beyond uniform (``max(P_C - 1/G, 0)``).
    off : torch.Tensor
        ``(G,)`` 1 where the cell is not evidence for the cluster.
    grid : sequence of int
        Shape of the summary grid (``prod(grid) == G``).
    cover : float
        Share of the off-evidence concentrated relevance the core cells must hold.

    Returns
    -------
    tuple of int
        Sorted flat cell indices: the core cells plus their off-evidence neighbours (one cell,
        all axes and diagonals) that carry concentrated relevance too. Empty when nothing off
        the evidence is concentrated on.
    """
    mis = (excess * off).to(torch.float64)  # (G,)
    total = float(mis.sum())
    if total <= 0:
        return ()
    order = torch.argsort(mis, descending=True, stable=True)
    running, core = 0.0, []
    for cell in order.tolist():
        core.append(cell)
        running += float(mis[cell])
        if running >= cover * total:
            break
    grid = tuple(int(g) for g in grid)
    chosen = torch.zeros(grid, dtype=torch.bool).reshape(-1)
    chosen[core] = True
    pool = by_rank.max_pool_fn(len(grid))
    near = pool(chosen.reshape(1, 1, *grid).float(), 3, stride=1, padding=1).reshape(-1) > 0.5  # (G,)
    chosen |= near & (mis > 0)
    return tuple(int(i) for i in torch.nonzero(chosen).reshape(-1))


def cell_mask(cells: Sequence[int], grid: Sequence[int], spatial: Sequence[int]) -> torch.Tensor:
    """Boolean ``(*spatial)`` mask of the positions that the summary cells ``cells`` pool.

    Cell ``i`` of an axis of length ``n`` split into ``g`` cells covers positions
    ``floor(i n / g)`` to ``ceil((i + 1) n / g)`` (exclusive), the windows of adaptive pooling
    (:func:`medlens.audit.summary.summarise_maps`).
    """
    grid = tuple(int(g) for g in grid)
    spatial = tuple(int(s) for s in spatial)
    mask = torch.zeros(spatial, dtype=torch.bool)
    for flat in cells:
        index, rest = [], int(flat)
        for axis in reversed(range(len(grid))):  # row-major, as the summaries are flattened
            rest, i = divmod(rest, grid[axis])
            n, g = spatial[axis], grid[axis]
            index.append(slice((i * n) // g, math.ceil((i + 1) * n / g)))
        mask[tuple(reversed(index))] = True
    return mask


def remove_region(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``x`` with the positions of ``mask`` replaced by a strongly blurred copy of the case.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)`` inputs.
    mask : torch.Tensor
        ``(*spatial)`` boolean region shared by all cases, or ``(B, *spatial)`` one per case.

    Returns
    -------
    torch.Tensor
        A new ``(B, C, *spatial)`` tensor: inside the region, the case blurred with a Gaussian of
        :data:`BLUR_FRACTION` of each axis (:func:`medlens.core.blur.gaussian_blur`); outside, the
        case unchanged.
    """
    spatial = x.shape[2:]
    mask = mask.to(torch.bool).reshape(-1, 1, *spatial).to(x.device)  # (1 or B, 1, *spatial)
    blurred = gaussian_blur(x, blur_sigma_for(spatial, BLUR_FRACTION))
    return torch.where(mask, blurred, x)


def null_cells(region: Sequence[int], evidence: torch.Tensor, grid: Sequence[int], generator: torch.Generator
               ) -> tuple[int, ...] | None:
    """``len(region)`` cells drawn at random among a case's evidence-free cells away from the region.

    Parameters
    ----------
    region : sequence of int
        The removed region's flat cells.
    evidence : torch.Tensor
        ``(G,)`` the case's possible-evidence cells (1) on the summary grid.
    grid : sequence of int
    generator : torch.Generator

    Returns
    -------
    tuple of int or None
        Sorted flat cells, or ``None`` when too few cells qualify.
    """
    grid = tuple(int(g) for g in grid)
    inside = torch.zeros(int(math.prod(grid)), dtype=torch.bool)
    inside[list(region)] = True
    pool = by_rank.max_pool_fn(len(grid))
    near = pool(inside.reshape(1, 1, *grid).float(), 3, stride=1, padding=1).reshape(-1) > 0.5  # region + neighbours
    free = torch.nonzero((evidence.reshape(-1) == 0) & ~near).reshape(-1)
    if len(free) < len(region):
        return None
    pick = free[torch.randperm(len(free), generator=generator)[:len(region)]]
    return tuple(sorted(int(i) for i in pick))


def region_key(method: str, cells: Sequence[int], draw: int = 0) -> str:
    """The store's key of a removal: the clustered method, the fill, the cells and the draw
    (0: the region itself; ``j >= 1``: the case's ``j``-th null draw)."""
    return f"{method}|{FILL}|" + ",".join(str(int(c)) for c in cells) + (f"|null{draw}" if draw else "")


class ModelRemoval:
    """Changes measured with the model: ``removal(cells, positions) -> (n, 1 + n_draws)``.

    Column 0 is each case's predicted-class probability before minus after removing ``cells``;
    column ``j`` the same for its ``j``-th null draw (:func:`null_cells`; NaN when the case has
    too few evidence-free cells away from the region).

    Parameters
    ----------
    model : nn.Module
    source : medlens.audit.sources.Source
        The opened data source of the audit.
    results : sequence of CaseResult
        The audited cases (positions index this list).
    grid : sequence of int
        The summary grid.
    batch_size : int
        The engine's fixed chunk size (the audit's ``settings.batch_size``).
    seed : int
        The audit's seed (the null draws).
    n_draws : int
        Null draws per case.
    """

    def __init__(self, model: nn.Module, source, results, grid: Sequence[int], batch_size: int, seed: int,
                 n_draws: int) -> None:
        self.model, self.source, self.results = model, source, list(results)
        self.grid, self.budget = tuple(int(g) for g in grid), Budget(batch_size=int(batch_size))
        self.chunk, self.seed, self.n_draws = int(batch_size), int(seed), int(n_draws)

    def __call__(self, cells: tuple[int, ...], positions: Sequence[int]) -> torch.Tensor | None:
        rows = []
        with evaluation_mode(self.model):
            for start in range(0, len(positions), self.chunk):
                chunk = list(positions[start:start + self.chunk])
                batch = self.source.load([self.results[p].index for p in chunk])
                if batch.failed:  # a case that was readable during the audit and is not now
                    return None
                x = batch.x.to(model_device(self.model))
                spatial = x.shape[2:]
                columns = [self._change(x, cell_mask(cells, self.grid, spatial), chunk)]
                for draw in range(1, self.n_draws + 1):
                    picks = [null_cells(cells, self.results[p].evidence, self.grid,
                                        generator(self.seed, "removal-null", ",".join(map(str, cells)),
                                                  self.results[p].index, draw)) for p in chunk]
                    masks = torch.stack([cell_mask(c or (), self.grid, spatial) for c in picks])  # (B, *spatial)
                    change = self._change(x, masks, chunk)
                    change[torch.tensor([c is None for c in picks])] = math.nan
                    columns.append(change)
                rows.append(torch.stack(columns, dim=1))  # (b, 1 + n_draws)
        return torch.cat(rows) if rows else torch.zeros(0, 1 + self.n_draws, dtype=torch.float64)

    def _change(self, x: torch.Tensor, mask: torch.Tensor, chunk: Sequence[int]) -> torch.Tensor:
        """``(b,)`` predicted-class probability before minus after removing ``mask``."""
        with torch.inference_mode():
            probs = model_probabilities(model_outputs(self.model, remove_region(x, mask), self.budget), self.model)
        probs = probs.detach().to("cpu", torch.float64)
        before = torch.tensor([self.results[p].probabilities[self.results[p].predicted] for p in chunk],
                              dtype=torch.float64)
        after = probs[torch.arange(len(chunk)), torch.tensor([self.results[p].predicted for p in chunk])]
        return before - after


class StoredRemoval:
    """Changes read from the audit's store, measured (and stored) by ``compute`` when missing.

    Parameters
    ----------
    store : medlens.audit.store.AuditStore
        An open store.
    method : str
        The clustered method (part of the key).
    results : sequence of CaseResult
    n_draws : int
        Null draws per case.
    compute : callable or None
        ``compute(cells, positions) -> (n, 1 + n_draws)`` (:class:`ModelRemoval`, or a text
        audit's token deletion); without it, a region whose changes are not all stored gives
        ``None`` (not measurable).
    key : callable
        ``key(method, cells, draw) -> str``, the store's key of a removal (default
        :func:`region_key`).
    """

    def __init__(self, store, method: str, results, n_draws: int, compute: Removal | None = None,
                 key: Callable[[str, Sequence[int], int], str] = region_key) -> None:
        self.store, self.method, self.results = store, method, list(results)
        self.n_draws, self.compute, self.key = int(n_draws), compute, key

    def __call__(self, cells: tuple[int, ...], positions: Sequence[int]) -> torch.Tensor | None:
        keys = [self.key(self.method, cells, j) for j in range(self.n_draws + 1)]
        stored = [self.store.removals(k) for k in keys]
        missing = [p for p in positions if any(self.results[p].index not in s for s in stored)]
        if missing:
            if self.compute is None:
                return None
            changes = self.compute(cells, missing)
            if changes is None:
                return None
            for j, key in enumerate(keys):
                self.store.add_removals(key, {self.results[p].index: float(changes[i, j]) for i, p in enumerate(missing)})
            stored = [self.store.removals(k) for k in keys]
        return torch.tensor([[s[self.results[p].index] for s in stored] for p in positions], dtype=torch.float64)
