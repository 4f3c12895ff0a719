"""Faithfulness: the deletion and insertion metrics of RISE.

Petsiuk, Das and Saenko, "RISE: Randomized Input Sampling for Explanation of Black-box Models",
BMVC 2018, section 4.1. An explanation is faithful when the positions it ranks highest are the
ones the model needs:

* **deletion** removes the most important positions first (replaces them with a baseline,
  zero in the paper) and records the probability of the explained class; a sharp drop, hence
  a *low* area under the curve, is good;
* **insertion** starts from a blurred copy of the input and restores the most important
  positions first; a sharp rise, hence a *high* area under the curve, is good.

The curve has ``steps + 1`` points: at step ``k`` the top ``round(k * P / steps)`` of the ``P``
positions are changed (all channels of a position at once), or of the ``P`` patches with
``patch > 1`` (region perturbation, Samek et al. 2017). The area is the trapezoidal integral
over the fraction of positions (patches) changed, in [0, 1].

All ``B * (steps + 1)`` perturbed inputs are built lazily, chunk by chunk, inside
:func:`medlens.core.engine.run`, so a volume's curve never sits in memory at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

import torch
from torch import nn

from medlens.core.checks import check_input, evaluation_mode, model_outputs
from medlens.core import engine
from medlens.core.engine import Budget
from medlens.core.targets import Target, TargetLike, probability_target, to_target
from medlens.errors import InputError
from medlens.core.baselines import resolve_baseline
from medlens.evaluation.maps import AttributionLike, saliency_map
from medlens.types import Attribution

BaselineLike = Union[str, float, torch.Tensor]

#: The deletion test can tell maps apart only when its curve can fall: when removing (blurring)
#: the whole input lowers the explained class's probability by less than this, every map, random
#: or not, ends about where it started, and a "significant" difference between two such curves is
#: a difference of rounding. Used by the case report's per-case check and by the leaderboard's
#: verdict (there on the random map's mean curve over the scored cases).
MIN_DROP = 0.1

__all__ = ["PerturbationCurve", "deletion", "insertion", "reference_input", "resolve_target"]


@dataclass(frozen=True)
class PerturbationCurve:
    """Result of :func:`deletion` or :func:`insertion`.

    Attributes
    ----------
    auc : torch.Tensor
        ``(B,)`` area under each sample's curve (trapezoidal, over the fraction changed).
    curve : torch.Tensor
        ``(B, steps + 1)`` probability of the explained class after each step.
    fractions : torch.Tensor
        ``(steps + 1,)`` fraction of positions changed at each step, from 0 to 1.
    """

    auc: torch.Tensor
    curve: torch.Tensor
    fractions: torch.Tensor


def resolve_target(
    model: nn.Module, x: torch.Tensor, attribution: AttributionLike | None, target: TargetLike | Target, budget: Budget
) -> Target:
    """The explained target: a given :class:`Target`, the user's target, or the attribution's.

    ``None`` takes the classes stored in an :class:`Attribution`, else the predicted class.
    """
    if isinstance(target, Target):
        return target
    if target is None and isinstance(attribution, Attribution) and bool((attribution.target >= 0).all()):
        target = attribution.target.reshape(-1)
        if target.numel() == 1 and len(x) > 1:
            target = target.expand(len(x))
    return to_target(target, model_outputs(model, x, budget))


def reference_input(x: torch.Tensor, baseline: BaselineLike, *, blur_sigma: float | None = None) -> torch.Tensor:
    """What a removed position is replaced with, ``(B, C, *spatial)`` like ``x``.

    Parameters
    ----------
    baseline : {"zero", "mean", "blur"}, float or torch.Tensor
        ``"zero"``: zeros (RISE deletion); ``"mean"``: each sample's per-channel mean;
        ``"blur"``: a Gaussian blur of the input (RISE insertion); a number: that constant; a
        tensor broadcastable to ``x``.
    blur_sigma : float, optional
        Blur width in elements; default :func:`medlens.core.baselines.default_blur_sigma`.

    The same resolver as the attribution methods' baselines
    (:func:`medlens.core.baselines.resolve_baseline`), materialised as a tensor.
    """
    if isinstance(baseline, bool):
        raise InputError("baseline must be 'zero', 'mean', 'blur', a number or a tensor, not a bool")
    return resolve_baseline(x, baseline, blur_sigma=blur_sigma).contiguous()


def importance_ranks(saliency: torch.Tensor) -> torch.Tensor:
    """Rank of each unit ``(B, Q)``: 0 for the most important; ties keep position order."""
    order = torch.argsort(-saliency, dim=1, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(saliency.shape[1], device=saliency.device).expand_as(order))
    return ranks


def patch_ids(spatial: Sequence[int], patch: Sequence[int]) -> tuple[torch.Tensor, int]:
    """Patch index of every position ``(P,)`` (row-major over the patch grid) and the patch count.

    Patches tile the input from the origin; the last patch along an axis is cut at the border.
    """
    grid = [math.ceil(n / p) for n, p in zip(spatial, patch)]
    ids = torch.zeros(tuple(spatial), dtype=torch.long)
    for axis, (n, p) in enumerate(zip(spatial, patch)):
        shape = [1] * len(spatial)
        shape[axis] = n
        ids = ids * grid[axis] + (torch.arange(n) // p).view(shape)
    return ids.reshape(-1), math.prod(grid)


def _patch_sizes(patch: int | Sequence[int], spatial: Sequence[int]) -> tuple[int, ...]:
    sizes = (patch,) * len(spatial) if isinstance(patch, int) and not isinstance(patch, bool) else tuple(patch)
    if len(sizes) != len(spatial) or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 1 for p in sizes):
        raise InputError(f"patch must be a positive integer or one per spatial axis ({len(spatial)}), got {patch!r}")
    return tuple(min(p, n) for p, n in zip(sizes, spatial))


def _curve(
    model: nn.Module,
    source: torch.Tensor,
    substitute: torch.Tensor,
    ranks: torch.Tensor,
    ids: torch.Tensor,
    steps: int,
    target: Target,
    budget: Budget,
) -> PerturbationCurve:
    """Probability of the target when the top-ranked units come from ``substitute``.

    ``ranks`` ``(B, Q)`` ranks the ``Q`` units (positions or patches); ``ids`` ``(P,)`` maps each
    position to its unit.
    """
    b, c, *spatial = source.shape
    n_units = ranks.shape[1]
    counts = torch.round(torch.arange(steps + 1, dtype=torch.float64) * n_units / steps).long()
    per_sample = steps + 1
    scores = torch.empty(b * per_sample, dtype=torch.float64)
    row_target = target.repeat_each(per_sample)
    position_ranks = ranks[:, ids.to(ranks.device)]  # (B, P): the rank of each position's unit

    def build(start: int, stop: int) -> torch.Tensor:
        rows = torch.arange(start, stop)
        sample, step = rows // per_sample, rows % per_sample
        changed = position_ranks[sample] < counts[step].to(ranks.device)[:, None]  # (n, P)
        changed = changed.view(len(rows), 1, *spatial)
        return torch.where(changed, substitute[sample], source[sample])

    def consume(start: int, stop: int, outputs: torch.Tensor, _grads, _aux) -> None:
        scores[start:stop] = row_target.take(slice(start, stop))(outputs).detach().to("cpu", torch.float64)

    engine.run(model, b * per_sample, build, consume=consume, budget=budget)
    curve = scores.view(b, per_sample)
    fractions = counts.to(torch.float64) / n_units
    return PerturbationCurve(torch.trapezoid(curve, fractions, dim=1), curve, fractions)


def _perturbation_metric(
    kind: str,
    model: nn.Module,
    x: torch.Tensor,
    attribution: AttributionLike,
    target: TargetLike | Target,
    *,
    steps: int,
    baseline: BaselineLike,
    blur_sigma: float | None,
    patch: int | Sequence[int],
    abs: bool,
    budget: Budget,
) -> PerturbationCurve:
    x = check_input(x)
    b, _c, *spatial = x.shape
    ids, n_units = patch_ids(spatial, _patch_sizes(patch, spatial))
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= n_units:
        raise InputError(f"steps must be an integer between 1 and the number of positions or patches ({n_units}), got {steps!r}")
    saliency = saliency_map(attribution, spatial, abs=abs)
    if len(saliency) != b:
        raise InputError(f"got {len(saliency)} attributions for {b} inputs")
    # a patch's importance is the sum of its positions' attributions (Samek et al. 2017)
    flat = saliency.reshape(b, -1).to(torch.float64)
    units = torch.zeros(b, n_units, dtype=torch.float64).index_add_(1, ids, flat.cpu())
    with evaluation_mode(model):
        x = engine.model_input(model, x)  # int16 HU or uint8 pixels: the model's dtype, values kept
        tgt = resolve_target(model, x, attribution, target, budget)
        if tgt.classes is not None:
            tgt = probability_target(tgt, model)
        ref = reference_input(x, baseline, blur_sigma=blur_sigma)
        ranks = importance_ranks(units).to(x.device)
        if kind == "deletion":
            return _curve(model, x, ref, ranks, ids, steps, tgt, budget)
        return _curve(model, ref, x, ranks, ids, steps, tgt, budget)


def deletion(
    model: nn.Module,
    x: torch.Tensor,
    attribution: AttributionLike,
    target: TargetLike | Target = None,
    *,
    steps: int = 20,
    baseline: BaselineLike = "zero",
    blur_sigma: float | None = None,
    patch: int | Sequence[int] = 1,
    abs: bool = False,
    batch_size: int | None = None, memory_mb: float | None = None,
) -> PerturbationCurve:
    """Deletion metric (Petsiuk et al. 2018): remove the most important positions first.

    Parameters
    ----------
    model : nn.Module
        Classifier with outputs ``(B, K)``; the probability of the target class is recorded.
    x : torch.Tensor
        ``(B, C, *spatial)`` inputs, 1 to 3 spatial axes.
    attribution : torch.Tensor or Attribution
        ``(B, C', *s')``; channels are summed per position, layer-resolution maps upsampled.
    target : int, sequence, Target or None
        Class whose probability is recorded. ``None``: the attribution's target if it is an
        :class:`Attribution`, else the predicted class. A callable target's score is recorded
        as it is.
    steps : int
        Number of deletion steps; the curve has ``steps + 1`` points.
    baseline : {"zero", "mean", "blur"}, float or tensor
        Value of a removed position (zero, as in the paper).
    blur_sigma : float, optional
        Blur width for ``baseline="blur"``.
    patch : int or sequence of int
        Remove square (cubic) patches of this side instead of single positions, ranked by the
        sum of their attributions: the region perturbation of Samek et al., "Evaluating the
        visualization of what a deep neural network has learned", IEEE TNNLS 2017. Scattered
        single pixels are an input the model never saw (a lesion detector reads them as
        lesions); patches remove evidence with fewer such artefacts. 1: positions, as in RISE.
    abs : bool
        Rank positions by attribution magnitude instead of signed value.
    batch_size, memory_mb : optional
        Chunking of the ``B * (steps + 1)`` model evaluations.

    Returns
    -------
    PerturbationCurve
        ``auc`` ``(B,)`` (lower is better), ``curve`` ``(B, steps + 1)``, ``fractions``.
    """
    budget = Budget(batch_size, memory_mb)
    return _perturbation_metric(
        "deletion", model, x, attribution, target,
        steps=steps, baseline=baseline, blur_sigma=blur_sigma, patch=patch, abs=abs, budget=budget,
    )


def insertion(
    model: nn.Module,
    x: torch.Tensor,
    attribution: AttributionLike,
    target: TargetLike | Target = None,
    *,
    steps: int = 20,
    baseline: BaselineLike = "blur",
    blur_sigma: float | None = None,
    patch: int | Sequence[int] = 1,
    abs: bool = False,
    batch_size: int | None = None, memory_mb: float | None = None,
) -> PerturbationCurve:
    """Insertion metric (Petsiuk et al. 2018): restore the most important positions first.

    Starts from ``baseline`` (a Gaussian blur of the input, as in the paper) and copies the
    input's values back, most important positions first. Parameters as in :func:`deletion`.

    Returns
    -------
    PerturbationCurve
        ``auc`` ``(B,)`` (higher is better), ``curve`` ``(B, steps + 1)``, ``fractions``.
    """
    budget = Budget(batch_size, memory_mb)
    return _perturbation_metric(
        "insertion", model, x, attribution, target,
        steps=steps, baseline=baseline, blur_sigma=blur_sigma, patch=patch, abs=abs, budget=budget,
    )
