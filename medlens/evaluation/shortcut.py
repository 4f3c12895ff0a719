"""Shortcut audit: does the model rely on a spurious marker?

On the lesion benchmark's shortcut variant a small marker (like a hospital tag) predicts the
label in the training images. Attribution on the marker says where explanations *look*; this
module measures what the *model* does, by intervention: the marker is pasted onto images that
lack it and erased from images that carry it, and the probability of the marker's class is
compared before and after. A model that relies on the marker changes its output; one that
ignores it does not.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from medlens.core.checks import evaluation_mode
from medlens.core import engine
from medlens.core.engine import Budget
from medlens.core.targets import model_probabilities
from medlens.errors import InputError
from medlens.evaluation.localisation import dilate

__all__ = ["MarkerIntervention", "marker_intervention"]


@dataclass(frozen=True)
class MarkerIntervention:
    """Probabilities of the marker's class before and after the intervention, per sample.

    Attributes
    ----------
    present : torch.Tensor
        ``(B,)`` bool: the sample carries the marker (it is erased) or not (it is pasted).
    p_original, p_intervened : torch.Tensor
        ``(B,)`` float64 probability of ``marker_class``.
    predicted : torch.Tensor
        ``(B,)`` int64 predicted class of the original input.
    marker_fraction : torch.Tensor
        ``(B,)`` share of the input's positions covered by the marker (0 without marker).
    """

    present: torch.Tensor
    p_original: torch.Tensor
    p_intervened: torch.Tensor
    predicted: torch.Tensor
    marker_fraction: torch.Tensor


def marker_intervention(
    model: nn.Module,
    x: torch.Tensor,
    marker_masks: torch.Tensor,
    template: tuple[torch.Tensor, torch.Tensor],
    *,
    marker_class: int = 1,
    batch_size: int | None = None, memory_mb: float | None = None,
) -> MarkerIntervention:
    """Paste the marker onto inputs without it, erase it from inputs with it.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)``.
    marker_masks : torch.Tensor
        ``(B, *spatial)`` bool: where each input carries the marker.
    template : (torch.Tensor, torch.Tensor)
        ``(values (C, *spatial), mask (*spatial) bool)``: an input that carries the marker and
        its marker mask; its values inside the mask are pasted.
    marker_class : int
        The class the marker predicts in the training data.

    Erasing replaces each marker position by the mean of a 2-element ring around the marker
    (per channel): a flat patch of the surrounding intensity.
    """
    budget = Budget(batch_size, memory_mb)
    b, c, *spatial = x.shape
    values, tmask = template
    if tmask.shape != tuple(spatial) or values.shape != (c, *spatial):
        raise InputError("the marker template does not match the inputs' shape")
    present = marker_masks.reshape(b, -1).any(1)
    ring = dilate(marker_masks, 2.0) & ~marker_masks  # (B, *spatial)
    ring_f = ring[:, None].to(x.dtype)
    ring_mean = (x * ring_f).sum(dim=tuple(range(2, x.ndim)), keepdim=True) / ring_f.sum(
        dim=tuple(range(2, x.ndim)), keepdim=True
    ).clamp(min=1)

    def build(start: int, stop: int) -> torch.Tensor:
        xs = x[start:stop]
        erased = torch.where(marker_masks[start:stop, None], ring_mean[start:stop].expand_as(xs), xs)
        pasted = torch.where(tmask[None, None], values[None].to(xs.dtype), xs)
        return torch.where(present[start:stop].view(-1, *([1] * (x.ndim - 1))), erased, pasted)

    with evaluation_mode(model):
        p_orig = model_probabilities(engine.forward(model, x, budget), model).to("cpu", torch.float64)
        p_int = model_probabilities(engine.run(model, b, build, budget=budget).outputs, model).to("cpu", torch.float64)
    if not 0 <= marker_class < p_orig.shape[1]:
        raise InputError(f"marker_class {marker_class} is out of range for a model with {p_orig.shape[1]} classes")
    fraction = marker_masks.reshape(b, -1).to(torch.float64).mean(1).cpu()
    return MarkerIntervention(present.cpu(), p_orig[:, marker_class], p_int[:, marker_class], p_orig.argmax(1), fraction)
