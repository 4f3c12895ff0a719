"""Robustness: how much does an explanation change under a tiny change of the input?

Max-sensitivity of Yeh, Hsieh, Suggala, Inouye and Ravikumar, "On the (In)fidelity and
Sensitivity of Explanations", NeurIPS 2019, estimated by Monte Carlo as in the paper:

    SENS_max(x) = max_{|y - x|_inf <= r} || Phi(y) - Phi(x) || / || Phi(x) ||

over ``n_samples`` inputs ``y`` drawn uniformly from the L-infinity ball of radius ``r``. The
norm ratio (Quantus' "normalised" variant) makes methods whose maps live on different scales
(raw gradients, CAMs in [0, 1]) comparable. Lower is better: a clinician should not see a
different map for an image that differs by noise.

Perturbed inputs are built one draw at a time (``B`` inputs), explained through the method,
which runs the model through the engine.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from medlens.core.checks import check_input, evaluation_mode
from medlens.core.engine import Budget, model_input
from medlens.core.targets import Target, TargetLike
from medlens.errors import InputError
from medlens.evaluation.explainers import MethodLike, explainer_for
from medlens.evaluation.faithfulness import resolve_target
from medlens.evaluation.maps import saliency_map
from medlens.core.random import generator

__all__ = ["max_sensitivity"]


def _noise(shape: tuple[int, ...], n: int, seed: int, sample_ids: list[int], dtype: torch.dtype) -> torch.Tensor:
    """``(n, B, *shape)`` uniform noise in [-1, 1]; column ``i`` depends only on ``sample_ids[i]``."""
    cols = []
    for sid in sample_ids:
        gen = generator(int(seed), "max-sensitivity", int(sid))
        cols.append(torch.rand((n, *shape), generator=gen, dtype=torch.float64) * 2 - 1)
    return torch.stack(cols, dim=1).to(dtype)


def max_sensitivity(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike | Target = None,
    method: MethodLike = "gradient",
    *,
    radius: float = 0.02,
    n_samples: int = 8,
    relative_radius: bool = True,
    seed: int = 0,
    sample_ids: torch.Tensor | None = None,
    batch_size: int | None = None, memory_mb: float | None = None,
    **options,
) -> torch.Tensor:
    """Monte-Carlo max-sensitivity (Yeh et al. 2019), normalised by the map's norm.

    Parameters
    ----------
    model : nn.Module
    x : torch.Tensor
        ``(B, C, *spatial)``.
    method : str or callable
        Registered method name (``options`` passed on) or explainer ``fn(model, x, target)``.
        A random method should get a fixed ``seed`` option, or its own noise counts as
        sensitivity.
    target : int, sequence, Target or None
        Kept fixed for the perturbed inputs; ``None``: predicted class of ``x``.
    radius : float
        Radius of the L-infinity ball.
    relative_radius : bool
        Scale ``radius`` by each sample's value range (max - min), so that 0.02 means 2 % of
        the intensity range whatever the units (Hounsfield units, [0, 1], millivolts).
    n_samples : int
        Number of perturbed inputs drawn per sample.
    seed : int
    sample_ids : torch.Tensor, optional
        ``(B,)`` ids that seed each sample's noise (default ``0..B-1``), so a sample's score does
        not depend on the batch it is computed in.

    Returns
    -------
    torch.Tensor
        ``(B,)`` float64, lower is better; NaN where the original map is all zero.
    """
    budget = Budget(batch_size, memory_mb)
    x = model_input(model, check_input(x))  # int16 HU or uint8 pixels: the model's dtype
    if isinstance(n_samples, bool) or not isinstance(n_samples, int) or n_samples < 1:
        raise InputError(f"n_samples must be a positive integer, got {n_samples!r}")
    if not radius > 0:
        raise InputError(f"radius must be positive, got {radius!r}")
    explain = explainer_for(method, budget=budget, **options)
    b, _c, *spatial = x.shape
    ids = list(range(b)) if sample_ids is None else [int(i) for i in sample_ids]
    scale = torch.full((b,), float(radius), dtype=x.dtype, device=x.device)
    if relative_radius:
        flat = x.detach().reshape(b, -1)
        scale = scale * (flat.max(1).values - flat.min(1).values)
    noise = _noise(tuple(x.shape[1:]), n_samples, seed, ids, x.dtype).to(x.device)
    with evaluation_mode(model):
        tgt = resolve_target(model, x, None, target, budget)
        original = saliency_map(explain(model, x, tgt), spatial).reshape(b, -1).to(torch.float64)
        norm = original.norm(dim=1)
        worst = torch.zeros(b, dtype=torch.float64, device=original.device)
        for j in range(n_samples):
            shifted = x + noise[j] * scale.view(b, *([1] * (x.ndim - 1)))
            perturbed = saliency_map(explain(model, shifted, tgt), spatial).reshape(b, -1).to(torch.float64)
            worst = torch.maximum(worst, (perturbed - original).norm(dim=1))
    out = torch.where(norm > 0, worst / norm.clamp(min=1e-300), torch.full_like(norm, math.nan))
    return out.cpu()
