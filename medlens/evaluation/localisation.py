"""Localisation: does an explanation point at the ground-truth evidence?

Scored per sample against a mask of the evidence (a lesion's exact support). Samples whose mask
is empty get NaN: there is nothing to point at.

* :func:`pointing_game` (Zhang et al., "Top-down Neural Attention by Excitation Backprop",
  IJCV 2018): a hit when the map's maximum lies in the mask, dilated by a tolerance;
* :func:`mass_in_mask`: the share of the positive attribution that falls inside the mask
  (relevance mass accuracy, Arras, Osman and Samek, "CLEVR-XAI", Information Fusion 2022);
* :func:`iou_at`: intersection over union of the mask with the map thresholded at its top
  fraction of positions or at Otsu's threshold (Otsu, IEEE TSMC 1979).

Maps are reduced to one value per position (channels summed, layer maps upsampled; see
:func:`medlens.evaluation.maps.saliency_map`).
"""

from __future__ import annotations

import math
from typing import Union

import torch

from medlens.core import layers as by_rank
from medlens.errors import InputError
from medlens.evaluation.maps import (
    AttributionLike,
    as_mask,
    attribution_values,
    saliency_map,
)

__all__ = ["dilate", "iou_at", "mass_in_mask", "otsu_threshold", "pointing_game"]



def _prepare(attribution: AttributionLike, mask: torch.Tensor, abs: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Saliency ``(B, P)`` and boolean mask ``(B, P)`` at the mask's resolution."""
    values = attribution_values(attribution)
    if not isinstance(mask, torch.Tensor):
        raise InputError(f"mask must be a tensor, got {type(mask).__name__}")
    spatial = tuple(mask.shape[2:]) if mask.ndim == values.ndim else tuple(mask.shape[1:])
    m = as_mask(mask, len(values), spatial)
    sal = saliency_map(values, spatial, abs=abs).to(torch.float64)
    return sal.reshape(len(sal), -1), m.reshape(len(m), -1).to(sal.device)


def dilate(mask: torch.Tensor, radius: float) -> torch.Tensor:
    """Dilate a boolean mask ``(B, *spatial)`` by a Euclidean ball of ``radius`` elements."""
    if radius <= 0:
        return mask
    r = int(math.floor(radius))
    dims = mask.ndim - 1
    axes = torch.meshgrid(*[torch.arange(-r, r + 1, dtype=torch.float64)] * dims, indexing="ij")
    ball = (sum(a**2 for a in axes) <= radius**2).to(torch.float32)
    out = by_rank.conv_fn(dims)(mask[:, None].float(), ball[None, None].to(mask.device), padding=r)
    return out[:, 0] > 0.5


def pointing_game(
    attribution: AttributionLike, mask: torch.Tensor, *, tolerance: float = 0.0, abs: bool = False
) -> torch.Tensor:
    """Pointing game hits (Zhang et al. 2018).

    Parameters
    ----------
    attribution : torch.Tensor or Attribution
        ``(B, C', *s')``.
    mask : torch.Tensor
        ``(B, *spatial)`` or ``(B, 1, *spatial)``, bool or 0/1.
    tolerance : float
        Radius (elements) by which the mask is dilated; the paper uses 15 pixels on images of
        a few hundred pixels.
    abs : bool
        Point with the largest magnitude instead of the largest signed value.

    Returns
    -------
    torch.Tensor
        ``(B,)`` float64: 1 for a hit, 0 for a miss; when several positions share the maximum,
        the fraction of them inside the mask (the expected hit under random tie-breaking, so a
        constant map cannot win); NaN where the mask is empty.
    """
    values = attribution_values(attribution)
    spatial = tuple(mask.shape[2:]) if mask.ndim == values.ndim else tuple(mask.shape[1:])
    sal, m = _prepare(attribution, mask, abs)
    if tolerance > 0:
        m = dilate(m.view(len(m), *spatial), tolerance).reshape(len(m), -1)
    is_max = sal == sal.max(1, keepdim=True).values
    hits = (is_max & m).sum(1).to(torch.float64) / is_max.sum(1)
    return torch.where(m.any(1), hits, torch.full_like(hits, math.nan)).cpu()


def mass_in_mask(attribution: AttributionLike, mask: torch.Tensor, *, abs: bool = False) -> torch.Tensor:
    """Share of the positive attribution that lies inside the mask.

    Returns
    -------
    torch.Tensor
        ``(B,)`` float64 in [0, 1]; NaN where the mask is empty or the map has no positive
        value (``abs=True`` scores magnitudes).
    """
    sal, m = _prepare(attribution, mask, abs)
    positive = sal.clamp(min=0)
    total = positive.sum(1)
    inside = (positive * m).sum(1)
    ok = m.any(1) & (total > 0)
    return torch.where(ok, inside / total.clamp(min=1e-300), torch.full_like(total, math.nan)).cpu()


def otsu_threshold(values: torch.Tensor, bins: int = 256) -> torch.Tensor:
    """Otsu's threshold of each row of ``values`` ``(B, P)``: maximal between-class variance.

    Returns ``(B,)``: positions strictly above it form the foreground. A constant row returns
    its value (nothing is foreground).
    """
    values = values.to(torch.float64)
    out = torch.empty(len(values), dtype=torch.float64)
    for i, row in enumerate(values):
        lo, hi = float(row.min()), float(row.max())
        if hi <= lo:
            out[i] = hi
            continue
        hist = torch.histc(row, bins=bins, min=lo, max=hi)
        centres = lo + (torch.arange(bins, dtype=torch.float64) + 0.5) * (hi - lo) / bins
        w0 = hist.cumsum(0)  # weight of the class at or below each bin
        w1 = hist.sum() - w0
        m0 = (hist * centres).cumsum(0)
        mu0 = m0 / w0.clamp(min=1e-12)
        mu1 = (m0[-1] - m0) / w1.clamp(min=1e-12)
        between = w0 * w1 * (mu0 - mu1) ** 2
        k = int(between[:-1].argmax())  # splitting after the last bin leaves no foreground
        out[i] = lo + (k + 1) * (hi - lo) / bins  # upper edge of the last background bin
    return out


def iou_at(
    attribution: AttributionLike,
    mask: torch.Tensor,
    *,
    threshold: Union[float, str] = 0.05,
    abs: bool = False,
) -> torch.Tensor:
    """Intersection over union of the mask with the thresholded map.

    Parameters
    ----------
    threshold : float in (0, 1] or "otsu"
        A number keeps the top fraction of positions (``0.05``: the 5 % most important; ties
        broken by position); ``"otsu"`` keeps the positions above Otsu's threshold of the map.

    Returns
    -------
    torch.Tensor
        ``(B,)`` float64 in [0, 1]; NaN where the mask is empty.
    """
    sal, m = _prepare(attribution, mask, abs)
    b, p = sal.shape
    if threshold == "otsu":
        selected = sal > otsu_threshold(sal.cpu()).to(sal.device)[:, None]
    elif isinstance(threshold, (int, float)) and not isinstance(threshold, bool) and 0 < threshold <= 1:
        k = max(1, math.ceil(float(threshold) * p))
        order = torch.argsort(-sal, dim=1, stable=True)[:, :k]
        selected = torch.zeros_like(m).scatter_(1, order, True)
    else:
        raise InputError(f"threshold must be a fraction in (0, 1] or 'otsu', got {threshold!r}")
    inter = (selected & m).sum(1).to(torch.float64)
    union = (selected | m).sum(1).to(torch.float64)
    return torch.where(m.any(1), inter / union.clamp(min=1), torch.full_like(inter, math.nan)).cpu()
