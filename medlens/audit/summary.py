"""Compact map summaries and the misplaced-relevance score of one case.

Spectral relevance analysis compares the attribution maps of thousands of cases, so each map is
reduced to a small fixed grid first (Lapuschkin et al., "Unmasking Clever Hans predictors and
assessing what machines really learn", Nature Communications 2019, section "Spectral relevance
analysis": relevance maps are downsized before clustering; Anders et al., "Finding and removing
Clever Hans", Information Fusion 2022, do the same in CoRelAy). Shape-generic: 1D signals, 2D
images and 3D volumes are pooled to :func:`summary_grid` cells.

The *misplaced-relevance score* of a case is the share of its relevance that lies where the
class evidence should not be: outside the (dilated) evidence mask when the case has one (a
lesion or an anatomy mask), else inside the border band of the input, where hospital tags,
laterality markers and scanner text live.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from medlens.core import layers as by_rank
from medlens.errors import InputError

__all__ = ["border_band", "evidence_grid", "misplaced_relevance", "summarise_maps", "summary_grid"]

GRID_CELLS = 64  # cells per summary: 64 for a signal, 8x8 for an image, 4x4x4 for a volume
BORDER_FRACTION = 1 / 8  # width of the border band, per axis, as a fraction of the axis
EVIDENCE_DILATION = 1 / 16  # the evidence mask is widened by this fraction of the largest axis


def summary_grid(spatial: Sequence[int], cells: int = GRID_CELLS) -> tuple[int, ...]:
    """The summary grid for inputs of spatial shape ``spatial``: about ``cells`` cells in all.

    Each axis gets ``round(cells ** (1 / dims))`` cells, at most its own length.
    """
    dims = len(spatial)
    if dims not in (1, 2, 3):
        raise InputError(f"map summaries need 1 to 3 spatial axes, got {dims}")
    side = max(1, round(cells ** (1 / dims)))
    return tuple(min(side, int(n)) for n in spatial)


def summarise_maps(saliency: torch.Tensor, grid: Sequence[int]) -> torch.Tensor:
    """Pool per-position saliency ``(B, *spatial)`` to ``(B, prod(grid))`` summaries.

    The magnitude of the map is average-pooled to ``grid`` (adaptive pooling, so any input size
    maps to the same grid), normalised to sum to one (a distribution of relevance over the
    cells: the audit compares *where* the model looks, not how strongly) and square-rooted, so
    that Euclidean distances between summaries are Hellinger distances between the
    distributions. A map that is zero everywhere gets the uniform distribution.

    Returns
    -------
    torch.Tensor
        ``(B, prod(grid))`` float32, each row of unit Euclidean norm.
    """
    b, *spatial = saliency.shape
    if len(spatial) != len(grid):
        raise InputError(f"saliency of shape {tuple(saliency.shape)} does not match a {len(grid)}D summary grid")
    pool = by_rank.adaptive_avg_pool_fn(len(grid))
    pooled = pool(saliency.detach().abs().to(torch.float64)[:, None], tuple(grid)).reshape(b, -1)  # (B, G)
    total = pooled.sum(1, keepdim=True)
    uniform = torch.full_like(pooled, 1.0 / pooled.shape[1])
    dist = torch.where(total > 0, pooled / total.clamp(min=1e-300), uniform)
    return dist.sqrt().to(torch.float32)


def border_band(spatial: Sequence[int], fraction: float = BORDER_FRACTION) -> torch.Tensor:
    """Boolean ``(*spatial)`` mask of the positions within ``fraction`` of an axis from an edge."""
    band = torch.zeros(tuple(spatial), dtype=torch.bool)
    for axis, n in enumerate(spatial):
        width = max(1, math.ceil(fraction * n))
        index = [slice(None)] * len(spatial)
        index[axis] = slice(0, width)
        band[tuple(index)] = True
        index[axis] = slice(n - width, n)
        band[tuple(index)] = True
    return band


def _dilate(mask: torch.Tensor, radius: int) -> torch.Tensor:
    """Dilate boolean ``(B, *spatial)`` by a cube of half-side ``radius`` (max pooling)."""
    if radius < 1:
        return mask
    pool = by_rank.max_pool_fn(mask.ndim - 1)
    return pool(mask[:, None].float(), 2 * radius + 1, stride=1, padding=radius)[:, 0] > 0.5


def misplaced_relevance(saliency: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
    """Share of each case's relevance that lies where the class evidence should not be.

    Parameters
    ----------
    saliency : torch.Tensor
        ``(B, *spatial)`` per-position relevance; its magnitude is scored.
    masks : torch.Tensor or None
        ``(B, *spatial)`` evidence masks (bool or 0/1), or ``None``. A case with a non-empty
        mask scores the share of relevance outside its mask dilated by
        :data:`EVIDENCE_DILATION` of the largest axis (attribution maps are smoother than the
        evidence); a case without one scores the share inside the border band
        (:func:`border_band`).

    Returns
    -------
    torch.Tensor
        ``(B,)`` float64 in [0, 1]; NaN for a map that is zero everywhere.
    """
    b, *spatial = saliency.shape
    mag = saliency.detach().abs().to(torch.float64).reshape(b, -1)
    total = mag.sum(1)
    band = border_band(spatial).reshape(-1).to(mag.device)
    score = (mag * band).sum(1) / total.clamp(min=1e-300)
    if masks is not None:
        m = masks.reshape(b, *spatial).to(torch.bool).to(mag.device)
        has = m.reshape(b, -1).any(1)
        if has.any():
            radius = max(1, round(EVIDENCE_DILATION * max(spatial)))
            near = _dilate(m, radius).reshape(b, -1)
            outside = (mag * ~near).sum(1) / total.clamp(min=1e-300)
            score = torch.where(has, outside, score)
    return torch.where(total > 0, score, torch.full_like(score, math.nan)).cpu()


def evidence_grid(masks: torch.Tensor | None, spatial: Sequence[int], grid: Sequence[int], batch: int) -> torch.Tensor:
    """Where each case's class evidence may lie, on the summary grid: ``(B, prod(grid))`` in {0, 1}.

    A cell is evidence when it overlaps the case's evidence mask dilated by
    :data:`EVIDENCE_DILATION` (cases with a non-empty mask), else when it lies off the border
    band (:func:`border_band` at the grid's resolution).

    Parameters
    ----------
    masks : torch.Tensor or None
        ``(B, *spatial)`` evidence masks, or None (no case has one).
    """
    spatial = tuple(int(s) for s in spatial)
    grid = tuple(int(g) for g in grid)
    interior = (~border_band(grid)).reshape(1, -1).to(torch.float32).expand(batch, -1).clone()
    if masks is None:
        return interior
    m = masks.reshape(batch, *spatial).to(torch.bool).cpu()
    has = m.reshape(batch, -1).any(1)
    if not has.any():
        return interior
    near = _dilate(m, max(1, round(EVIDENCE_DILATION * max(spatial))))
    pool = by_rank.adaptive_max_pool_fn(len(grid))
    cells = pool(near[:, None].to(torch.float32), grid).reshape(batch, -1)
    return torch.where(has[:, None], cells, interior)
