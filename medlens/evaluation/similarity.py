"""Similarity of two explanations: Spearman rank correlation and SSIM, batched, shape-generic.

Both are used by the randomisation sanity check (Adebayo et al., "Sanity Checks for Saliency
Maps", NeurIPS 2018), which compares the map of a trained model with the map of a randomised
one.
"""

from __future__ import annotations

import math

import torch

from medlens.core.blur import gaussian_blur


def rankdata(x: torch.Tensor) -> torch.Tensor:
    """Ranks ``1..L`` along the last axis of ``x`` ``(B, L)``; tied values get their average rank.

    The same convention as :func:`scipy.stats.rankdata` (``method="average"``).
    """
    b, n = x.shape
    sorted_vals, order = x.sort(dim=1, stable=True)
    # Group ids of runs of equal values, made unique across rows by an offset per row.
    new_group = torch.ones_like(sorted_vals, dtype=torch.bool)
    new_group[:, 1:] = sorted_vals[:, 1:] != sorted_vals[:, :-1]
    groups = new_group.long().cumsum(1) - 1 + torch.arange(b, device=x.device)[:, None] * n  # (B, L)
    positions = torch.arange(1, n + 1, dtype=torch.float64, device=x.device).expand(b, n)
    total = torch.zeros(b * n, dtype=torch.float64, device=x.device).index_add_(0, groups.flatten(), positions.flatten())
    count = torch.zeros(b * n, dtype=torch.float64, device=x.device).index_add_(
        0, groups.flatten(), torch.ones(b * n, dtype=torch.float64, device=x.device)
    )
    average = (total / count.clamp(min=1))[groups]  # (B, L): average rank of each sorted entry
    ranks = torch.empty_like(average)
    ranks.scatter_(1, order, average)
    return ranks


def _pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    denom = a.norm(dim=1) * b.norm(dim=1)
    # A constant map has no ranking: its correlation is undefined (NaN), as in scipy.
    return torch.where(denom > 0, (a * b).sum(1) / denom.clamp(min=1e-300), torch.full_like(denom, math.nan))


def spearman(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Spearman rank correlation of each pair of rows.

    Parameters
    ----------
    a, b : torch.Tensor
        ``(B, ...)``: each sample is flattened.

    Returns
    -------
    torch.Tensor
        ``(B,)`` float64 in [-1, 1]; NaN where either map is constant.
    """
    a = a.detach().reshape(len(a), -1).to(torch.float64)
    b = b.detach().reshape(len(b), -1).to(torch.float64)
    return _pearson(rankdata(a), rankdata(b))


def ssim(
    a: torch.Tensor,
    b: torch.Tensor,
    *,
    sigma: float = 1.5,
    data_range: float | None = None,
    k1: float = 0.01,
    k2: float = 0.03,
) -> torch.Tensor:
    """Mean structural similarity (Wang et al. 2004) of each pair of maps, Gaussian window.

    Parameters
    ----------
    a, b : torch.Tensor
        ``(B, *spatial)`` with 1, 2 or 3 spatial axes.
    sigma : float
        Standard deviation of the Gaussian window (1.5 in the paper, an 11-tap window); the
        window is truncated at 3.5 sigma and to the smallest axis.
    data_range : float or None
        ``L`` in the constants ``C1 = (k1 L)^2``, ``C2 = (k2 L)^2``. ``None``: each map is
        first min-max normalised to [0, 1] (as Adebayo et al. do before comparing maps) and
        ``L = 1``.

    Returns
    -------
    torch.Tensor
        ``(B,)`` float64: the mean of the local SSIM over all window positions that fit inside
        the map ("valid" filtering, as in the paper's reference code).
    """
    a = a.detach().to(torch.float64)
    b = b.detach().to(torch.float64)
    if data_range is None:
        a, b = _unit_range(a), _unit_range(b)
        data_range = 1.0
    # the paper's 11-element window at sigma 1.5 (radius round(3.5 sigma)), shrunk to fit the map
    radius = max(0, min(round(3.5 * sigma), (min(a.shape[1:]) - 1) // 2))
    x, y = a[:, None], b[:, None]  # (B, 1, *spatial)

    def local_mean(t: torch.Tensor) -> torch.Tensor:
        return gaussian_blur(t, sigma, truncate=radius / sigma, mode="valid") if radius else t

    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x**2
    var_y = local_mean(y * y) - mu_y**2
    cov = local_mean(x * y) - mu_x * mu_y
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return s.reshape(len(s), -1).mean(1)


def _unit_range(t: torch.Tensor) -> torch.Tensor:
    flat = t.reshape(len(t), -1)
    lo = flat.min(1).values.view(-1, *([1] * (t.ndim - 1)))
    hi = flat.max(1).values.view(-1, *([1] * (t.ndim - 1)))
    return (t - lo) / (hi - lo).clamp(min=1e-12)
