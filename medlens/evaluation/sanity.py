"""Sanity checks: does the explanation depend on the model at all?

Adebayo, Gilmer, Muelly, Goodfellow, Hardt and Kim, "Sanity Checks for Saliency Maps",
NeurIPS 2018, section 3 (cascading model parameter randomisation). The layers of the trained
model are re-initialised one after the other, from the output layer down; after each step the
input is explained again and compared with the original explanation by Spearman rank correlation
and SSIM. A method whose maps barely change while the model is destroyed shows the input, not
the model: it fails. (An edge detector, or the input itself, has correlation 1 at every step.)

The user's model is never modified: randomisation happens on a :func:`copy.deepcopy`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from torch import nn

from medlens.core.random import generator
from medlens.core.checks import check_input, evaluation_mode
from medlens.core.engine import Budget, model_input
from medlens.core.targets import Target, TargetLike
from medlens.errors import InputError, UnknownNameError
from medlens.evaluation.explainers import MethodLike, explainer_for
from medlens.evaluation.faithfulness import resolve_target
from medlens.evaluation.maps import saliency_map
from medlens.evaluation.similarity import spearman, ssim

__all__ = [
    "SANITY_THRESHOLD",
    "SanityResult",
    "cascading_randomisation",
    "passes_randomisation",
    "randomisable_layers",
    "randomised_copy",
]

#: A method passes when the mean Spearman correlation between its map for the trained model and
#: for the fully randomised model stays below this value (absolute maps). Adebayo et al. read the
#: check visually; 0.5 separates the maps that depend on the model (gradient, Grad-CAM: near 0)
#: from those that mostly show the input (an edge detector, the input itself: near 1).
SANITY_THRESHOLD = 0.5


@dataclass(frozen=True)
class SanityResult:
    """Result of :func:`cascading_randomisation`.

    Attributes
    ----------
    layers : list of str
        Stage names: the layer randomised at each stage (cumulatively, from the top), or one
        stage ``"all N layers"`` when ``each_layer=False``.
    spearman : torch.Tensor
        ``(stages, B)`` rank correlation between original and randomised maps.
    ssim : torch.Tensor
        ``(stages, B)`` structural similarity between them (maps min-max normalised).
    """

    layers: list[str]
    spearman: torch.Tensor
    ssim: torch.Tensor

    @property
    def passed(self) -> bool:
        """Whether the fully randomised stage falls below :data:`SANITY_THRESHOLD` on average."""
        return passes_randomisation(self.spearman[-1])


def passes_randomisation(spearman_last: torch.Tensor, threshold: float = SANITY_THRESHOLD) -> bool:
    """``True`` when the mean (NaN ignored) rank correlation at full randomisation is below ``threshold``."""
    values = spearman_last[~torch.isnan(spearman_last)]
    return bool(len(values)) and float(values.mean()) < threshold


def randomisable_layers(model: nn.Module) -> list[str]:
    """Names of the layers with weight matrices (convolutions, linear, recurrent), from the
    output down: the order of the cascade."""
    names = [
        name
        for name, module in model.named_modules()
        if name and any(p.ndim >= 2 for p in module.parameters(recurse=False))
    ]
    return names[::-1]


def _randomise_module(module: nn.Module, gen: torch.Generator) -> None:
    """Redraw the module's own parameters from a normal distribution of the same scale.

    Keeping each tensor's standard deviation keeps activations in range, so the randomised
    model still produces finite, non-degenerate outputs (the paper re-initialises with a
    truncated normal for the same reason).
    """
    with torch.no_grad():
        for p in module.parameters(recurse=False):
            scale = float(p.detach().float().std()) if p.numel() > 1 else 0.0
            if not scale > 0:
                fan_in = math.prod(p.shape[1:]) if p.ndim >= 2 else max(1, p.numel())
                scale = 1.0 / math.sqrt(fan_in)
            noise = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            p.copy_((noise * scale).to(dtype=p.dtype, device=p.device))


def randomised_copy(model: nn.Module, layers: list[str] | None = None, *, seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` whose ``layers`` (default: all of :func:`randomisable_layers`)
    are re-initialised; the original is untouched."""
    clone = copy.deepcopy(model)
    names = randomisable_layers(clone) if layers is None else list(layers)
    modules = dict(clone.named_modules())
    gen = generator(int(seed), "randomise")
    for name in names:
        if name not in modules:
            raise UnknownNameError(f"the model has no layer named {name!r}")
        _randomise_module(modules[name], gen)
    return clone


def cascading_randomisation(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike | Target = None,
    method: MethodLike = "gradient",
    *,
    layers: list[str] | None = None,
    each_layer: bool = True,
    abs: bool = True,
    seed: int = 0,
    batch_size: int | None = None, memory_mb: float | None = None,
    **options,
) -> SanityResult:
    """Cascading model parameter randomisation (Adebayo et al. 2018).

    Parameters
    ----------
    model : nn.Module
        The trained classifier (not modified).
    x : torch.Tensor
        ``(B, C, *spatial)``.
    method : str or callable
        A registered method name (``options`` are passed to it) or an explainer
        ``fn(model, x, target) -> (B, C', *s')``.
    target : int, sequence, Target or None
        The class explained, kept fixed for the randomised models. ``None``: predicted class
        of the trained model.
    layers : list of str, optional
        Layers to randomise, in cascade order; default :func:`randomisable_layers` (top down).
    each_layer : bool
        Explain after each layer (the cascade); ``False`` explains only the fully randomised
        model (one stage, cheaper).
    abs : bool
        Compare map magnitudes (the paper's main setting); ``False`` keeps signs.
    seed : int
        Seeds the new weights.

    Returns
    -------
    SanityResult
        Spearman and SSIM ``(stages, B)``; ``.passed`` applies :data:`SANITY_THRESHOLD`.
    """
    budget = Budget(batch_size, memory_mb)
    x = model_input(model, check_input(x))  # int16 HU or uint8 pixels: the model's dtype
    explain = explainer_for(method, budget=budget, **options)
    names = randomisable_layers(model) if layers is None else list(layers)
    if not names:
        raise InputError("the model has no layer with a weight matrix to randomise")
    spatial = x.shape[2:]
    with evaluation_mode(model):
        tgt = resolve_target(model, x, None, target, budget)
        original = saliency_map(explain(model, x, tgt), spatial, abs=abs)
    stages = [[n] for n in names] if each_layer else [names]
    clone = copy.deepcopy(model)
    modules = dict(clone.named_modules())
    for name in names:
        if name not in modules:
            raise UnknownNameError(f"the model has no layer named {name!r}")
    gen = generator(int(seed), "randomise")
    rho, sim, labels = [], [], []
    for stage in stages:
        for name in stage:  # cumulative: earlier stages stay randomised
            _randomise_module(modules[name], gen)
        with evaluation_mode(clone):
            randomised = saliency_map(explain(clone, x, tgt), spatial, abs=abs)
        rho.append(spearman(original, randomised))
        sim.append(ssim(original, randomised))
        labels.append(stage[0] if each_layer else f"all {len(stage)} layers")
    return SanityResult(labels, torch.stack(rho), torch.stack(sim))
