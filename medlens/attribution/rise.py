"""RISE: Petsiuk, Das and Saenko, "RISE: Randomized Input Sampling for Explanation of
Black-box Models" (BMVC 2018).

A black-box method: the model is only evaluated, never differentiated. ``N`` random masks are
drawn; the saliency of a location is the mean score of the masked inputs weighted by the mask
value there, normalised by the keep probability:
``S(l) = 1 / (N p) * sum_i f(x * M_i) M_i(l)``.

Masks follow the authors' reference code: a binary grid of ``s`` cells per dimension (each cell
kept with probability ``p``) is upsampled (bi/tri)linearly to ``(s + 1) * cell`` with
``cell = ceil(size / s)``, then cropped at a random shift in ``[0, cell)`` per dimension, so
that mask edges do not always fall on the same grid lines. Grids and shifts are drawn once (a
few bits per cell); the full-size masks are built one engine chunk at a time.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medlens.attribution.common import view_rows
from medlens.core.baselines import BaselineLike, resolve_baseline
from medlens.core.options import check_count, check_fraction, per_dim
from medlens.core.random import generator
from medlens.core import engine
from medlens.core.cost import affordable, chosen
from medlens.core.layers import interpolation_mode
from medlens.core.engine import Budget
from medlens.attribution.registry import register
from medlens.core.targets import Target, probability_target, summed_scores
from medlens.errors import UnknownNameError

SCORES = ("probability", "output")
#: A target score whose spread over the masks is at most this share of its size (at least 1) did
#: not change: the map is the masks' noise, and the result says so.
FLAT_SCORE = 1e-6


def grid_shape(spatial: Sequence[int], s: int | Sequence[int]) -> tuple[int, ...]:
    """Cells per dimension: ``s`` (default 7, as in the paper), at most the dimension's size."""
    cells = per_dim(s, len(spatial), "s")
    return tuple(min(g, n) for g, n in zip(cells, spatial))


def draw_grids(
    n_masks: int, spatial: Sequence[int], s: int | Sequence[int], p: float, seed: int
) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """The random part of the masks.

    Returns
    -------
    grids : torch.Tensor
        ``(N, 1, *cells)`` bool, each cell kept with probability ``p``.
    shifts : torch.Tensor
        ``(N, n_spatial)`` int64, the crop offset of each mask, uniform in ``[0, cell)``.
    cell : tuple of int
        Cell size per dimension, ``ceil(size / cells)``.
    """
    cells = grid_shape(spatial, s)
    cell = tuple(math.ceil(n / g) for n, g in zip(spatial, cells))
    gen = generator(seed, "rise-masks")
    grids = torch.rand((n_masks, 1, *cells), generator=gen) < p
    shifts = torch.stack([torch.randint(0, c, (n_masks,), generator=gen) for c in cell], dim=1)
    return grids, shifts, cell


def build_masks(
    grids: torch.Tensor, shifts: torch.Tensor, cell: Sequence[int], spatial: Sequence[int], like: torch.Tensor
) -> torch.Tensor:
    """Smooth masks ``(n, 1, *spatial)`` in ``[0, 1]`` from grids ``(n, 1, *cells)`` and shifts ``(n, d)``."""
    cells = grids.shape[2:]
    up_size = tuple((g + 1) * c for g, c in zip(cells, cell))
    up = F.interpolate(
        grids.to(device=like.device, dtype=like.dtype), size=up_size,
        mode=interpolation_mode(len(spatial)), align_corners=False,
    )  # (n, 1, *up_size)
    crops = [
        up[(i, slice(None), *(slice(o, o + n) for o, n in zip(offsets, spatial)))]
        for i, offsets in enumerate(shifts.tolist())
    ]
    return torch.stack(crops)


@register(
    "rise",
    needs_gradients=False,
    random=True,
    summary="mean score of randomly masked inputs, weighted by each mask (black box)",
    reference="Petsiuk, Das and Saenko 2018",
)
def rise(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    n_masks: int | None = None,
    s: int | Sequence[int] = 7,
    p: float = 0.5,
    seed: int = 0,
    baseline: BaselineLike = 0.0,
    score: str = "probability",
    centred: bool = True,
    budget: Budget = Budget(),
) -> tuple[torch.Tensor, dict]:
    """Randomized input sampling for explanation.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)``.
    n_masks : int, optional
        Number of random masks ``N`` (model evaluations per sample). The paper uses 4000 on
        224x224 ImageNet images; fewer suffice for small inputs. Default: 1000, fewer (at
        least 32) for a model whose 1000 evaluations would cost more than
        :data:`~medlens.core.cost.FLOP_BUDGET`; the chosen count is recorded in ``params``.
    s : int or sequence of int
        Grid cells per spatial dimension (the paper's ``s = 7``), capped at each size: a cell
        covers about ``1/s`` of each dimension whatever the input size.
    p : float
        Probability of keeping a cell.
    seed : int
        Seeds the grids and shifts; all samples of a batch share the same masks.
    baseline : {"zero", "blur", "mean"}, float or torch.Tensor
        What masked-out elements become: ``x * M + baseline * (1 - M)``; the paper uses 0.
    score : {"probability", "output"}
        ``probability``: the target's softmax (or sigmoid) probability, as in the paper, for
        models that output logits; ``output``: the raw target output (for models that already
        output probabilities). A summed score (:class:`~medlens.core.targets.ReducedOutput`: a
        class inside a region of a segmentation, or a regression) has no probability and is
        weighed as it is; a :class:`~medlens.core.targets.MultiLabel` model's finding by its own
        sigmoid. A score that no mask changes (a saturated probability) is named in the
        result's ``note``: such a map is the masks' noise.

    Returns
    -------
    values : torch.Tensor
        ``(B, 1, *spatial)``: the masks are shared by all channels.
    extras : dict
        Empty, or what :func:`medlens.core.cost.chosen` records when ``n_masks`` was chosen.
    """
    b, _, *spatial = x.shape
    extras: dict = {}
    if n_masks is None:
        n_masks = affordable(model, x, passes=1, low=32, high=1000)
        extras = chosen(model, x, {"n_masks": n_masks}, reduced=n_masks < 1000)
    n = check_count(n_masks, "n_masks")
    keep = check_fraction(p, "p", low=0.0, high=1.0)
    if score not in SCORES:
        raise UnknownNameError(f"unknown RISE score {score!r}; choose one of {', '.join(SCORES)}")
    summed = score == "probability" and summed_scores(model)
    scorer = probability_target(target, model) if score == "probability" else target
    grids, shifts, cell = draw_grids(n, spatial, s, keep, seed)
    reference = resolve_baseline(x, baseline)
    zero_reference = reference.stride() == (0,) * x.ndim and not bool(reference.flatten()[0])
    difference = x - reference
    saliency = x.new_zeros((b, 1, *spatial))

    def build(start: int, stop: int):
        rows = torch.arange(start, stop)
        sample, mask = rows // n, rows % n  # row = sample * n_masks + mask
        masks = build_masks(grids[mask], shifts[mask], cell, spatial, x)  # (rows, 1, *spatial)
        sample = sample.to(x.device)
        occluded = masks * difference[sample]  # x * M + baseline * (1 - M), minus the baseline
        if not zero_reference:
            occluded += reference[sample]
        return occluded, (sample, masks)

    mask_sums = x.new_zeros((b, 1, *spatial))
    score_sums = x.new_zeros(b, dtype=torch.float64)
    square_sums = x.new_zeros(b, dtype=torch.float64)

    def consume(start, stop, outputs, grads, aux):
        sample, masks = aux
        scores = scorer.take(sample)(outputs).to(x.dtype)
        saliency.index_add_(0, sample, masks * view_rows(scores, masks.ndim))
        score_sums.index_add_(0, sample, scores.double())
        square_sums.index_add_(0, sample, scores.double().square())
        if centred:
            mask_sums.index_add_(0, sample, masks)

    engine.run(model, b * n, build, mode="forward", consume=consume, budget=budget, parallel=True)
    notes = [extras["note"]] if "note" in extras else []
    if summed:
        notes.append("the model's output is a summed score (a region of a segmentation, or a regression), not "
                     "a class's logit, so the masks are weighed by that score itself, not by a probability")
    spread = (square_sums / n - (score_sums / n) ** 2).clamp(min=0).sqrt()
    flat = spread <= FLAT_SCORE * score_sums.abs().div(n).clamp(min=1.0)
    if bool(flat.any()):
        notes.append(f"the target's score did not change under any of the {n} masks for {int(flat.sum())} of {b} "
                     "input(s): their maps show no evidence" + (" (a saturated probability: try score='output')"
                                                                 if score == "probability" and not summed else ""))
    if notes:
        extras["note"] = "; ".join(notes)
    if centred:
        mean = view_rows((score_sums / n).to(x.dtype), saliency.ndim)
        # sum_i (f_i - mean) M_i(l), without a second pass over the masks
        return mean + (saliency - mean * mask_sums) / (n * keep), extras
    return saliency / (n * keep), extras
