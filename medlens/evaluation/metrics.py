"""The built-in leaderboard metrics: thin adapters from :class:`EvalBatch` to the metric functions.

Each adapter's keyword options (with defaults) are the settings the leaderboard records with
its results; see :mod:`medlens.evaluation.registry`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from medlens.evaluation.faithfulness import deletion, insertion
from medlens.evaluation.localisation import iou_at, mass_in_mask, pointing_game
from medlens.evaluation.maps import saliency_map
from medlens.evaluation.registry import EvalBatch, register_metric, torch_tensor
from medlens.evaluation.robustness import max_sensitivity
from medlens.evaluation.similarity import spearman, ssim


def _patch(batch: EvalBatch, patch: int | str) -> int:
    """``"auto"``: in an image or a volume, patches of 1/16 of the largest axis (4 pixels at 64,
    single positions below 24); along a signal, of 1/256 of its length (at 1/16 a 252-sample
    beat would have 16 regions, fewer than the curve's 20 steps: a 2-D image has 256)."""
    if patch == "auto":
        spatial = batch.x.shape[2:]
        return max(1, round(max(spatial) / (256 if len(spatial) == 1 else 16)))
    return patch


def _steps(batch: EvalBatch, steps: int, patch: int | Sequence[int]) -> int:
    """``steps``, or the number of regions of ``patch`` when the input has fewer (a tiny input)."""
    spatial = batch.x.shape[2:]
    sizes = [patch] * len(spatial) if isinstance(patch, int) else list(patch)
    regions = math.prod(math.ceil(n / max(1, min(int(p), n))) for n, p in zip(spatial, sizes))
    return min(steps, regions) if isinstance(steps, int) and not isinstance(steps, bool) else steps


@register_metric(
    "deletion_auc", higher_is_better=False, label="deletion AUC",
    summary="area under the class probability as the most important regions are replaced by a blurred copy",
    reference="Petsiuk et al. 2018 (RISE); regions as in Samek et al. 2017",
)
def _deletion(
    batch: EvalBatch, *, steps: int = 20, baseline: str = "blur", patch: int | str = "auto", abs: bool = True
) -> tuple[torch.Tensor, dict]:
    # Three departures from RISE's exact recipe, each recorded with the results (pass
    # baseline="zero", patch=1, abs=False for the paper's variant):
    # * a blurred substrate and patches instead of zeroed single pixels: scattered black pixels
    #   are dark spots the model never saw, a lesion detector reads them as lesions, and every
    #   ranking (random included) then gives the same curve;
    # * regions ranked by attribution magnitude: the sign of a raw gradient flips with the
    #   polarity of a lesion (bright or dark), and a diverging colour map shows strong negative
    #   regions as prominently as positive ones, so "most important" means largest magnitude.
    patch = _patch(batch, patch)
    res = deletion(batch.model, batch.x, batch.attribution, batch.target, steps=_steps(batch, steps, patch),
                   baseline=baseline, patch=patch, abs=abs, **batch.budget.kwargs())
    return torch_tensor(res.auc), {"curve": torch_tensor(res.curve)}


@register_metric(
    "insertion_auc", higher_is_better=True, label="insertion AUC",
    summary="area under the class probability as the most important regions are restored into a blurred input",
    reference="Petsiuk et al. 2018 (RISE); regions as in Samek et al. 2017",
)
def _insertion(
    batch: EvalBatch, *, steps: int = 20, baseline: str = "blur", patch: int | str = "auto", abs: bool = True
) -> tuple[torch.Tensor, dict]:
    patch = _patch(batch, patch)
    res = insertion(batch.model, batch.x, batch.attribution, batch.target, steps=_steps(batch, steps, patch),
                   baseline=baseline, patch=patch, abs=abs, **batch.budget.kwargs())
    return torch_tensor(res.auc), {"curve": torch_tensor(res.curve)}


@register_metric(
    "pointing_game", higher_is_better=True, needs_masks=True, label="pointing game",
    summary="the map's maximum lies inside the lesion (hit rate)",
    reference="Zhang et al. 2018",
)
def _pointing(batch: EvalBatch, *, tolerance: float = 0.0) -> torch.Tensor:
    return pointing_game(batch.attribution, batch.masks, tolerance=tolerance)


@register_metric(
    "mass_in_mask", higher_is_better=True, needs_masks=True, label="mass in lesion",
    summary="share of the positive attribution inside the lesion",
    reference="Arras et al. 2022 (relevance mass accuracy)",
)
def _mass(batch: EvalBatch) -> torch.Tensor:
    return mass_in_mask(batch.attribution, batch.masks)


@register_metric(
    "iou", higher_is_better=True, needs_masks=True, label="IoU",
    summary="overlap of the lesion with the map's top positions",
    reference="intersection over union at a top-k threshold",
)
def _iou(batch: EvalBatch, *, threshold: float | str = 0.05) -> torch.Tensor:
    return iou_at(batch.attribution, batch.masks, threshold=threshold)


@register_metric(
    "marker_mass", higher_is_better=None, needs_marker=True, label="mass on marker",
    summary="share of the positive attribution on the shortcut marker (images that carry it)",
    reference="shortcut audit on the lesion benchmark",
)
def _marker(batch: EvalBatch) -> torch.Tensor:
    return mass_in_mask(batch.attribution, batch.marker_masks)


def _randomised_maps(batch: EvalBatch) -> tuple[torch.Tensor, torch.Tensor]:
    spatial = batch.x.shape[2:]
    original = saliency_map(batch.attribution, spatial, abs=True)
    randomised = saliency_map(batch.randomised_attribution, spatial, abs=True)
    return original, randomised


@register_metric(
    "randomisation_spearman", higher_is_better=False, reexplains=True, needs_randomised=True, label="rand. Spearman",
    summary="rank correlation with the map of the fully randomised model (near 1: ignores the model)",
    reference="Adebayo et al. 2018",
)
def _rand_spearman(batch: EvalBatch) -> torch.Tensor:
    original, randomised = _randomised_maps(batch)
    rho = spearman(original, randomised).cpu()
    # A rank correlation is undefined for a constant map. A map that collapses to a constant
    # under randomisation (a CAM whose ReLU cuts everything) has changed completely: 0. A map that
    # is constant on the trained model (all zero: a model that ignores its input, a CAM cut to
    # nothing) shows nothing, whatever the randomised model's map does: 1, it cannot pass.
    flat = [m.reshape(len(m), -1) for m in (original, randomised)]
    const = [(f.max(1).values == f.min(1).values).cpu() for f in flat]
    rho = torch.where(const[0], torch.ones_like(rho), rho)
    return torch.where(torch.isnan(rho) & const[1], torch.zeros_like(rho), rho)


@register_metric(
    "randomisation_ssim", higher_is_better=False, reexplains=True, needs_randomised=True, label="rand. SSIM",
    summary="structural similarity with the map of the fully randomised model",
    reference="Adebayo et al. 2018",
)
def _rand_ssim(batch: EvalBatch) -> torch.Tensor:
    return ssim(*_randomised_maps(batch)).cpu()


@register_metric(
    "max_sensitivity", higher_is_better=False, reexplains=True, label="max-sensitivity",
    summary="largest relative change of the map under input noise of 2 % of the intensity range",
    reference="Yeh et al. 2019",
)
def _sensitivity(batch: EvalBatch, *, radius: float = 0.02, n_samples: int = 4) -> torch.Tensor:
    return max_sensitivity(
        batch.model, batch.x, batch.target, batch.explainer,
        radius=radius, n_samples=n_samples, seed=batch.seed, sample_ids=batch.sample_ids, **batch.budget.kwargs(),
    )
