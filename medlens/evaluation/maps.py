"""Shared helpers of the metrics: attribution maps and masks.

Every metric compares attributions *per position* of the input: an attribution ``(B, C', *s')``
becomes a saliency map ``(B, *spatial)`` by summing its channels (signed: evidence for and
against the class cancel, as they do in the model's score) after upsampling layer-resolution
maps (Grad-CAM) to the input size. Deletion removes, and localisation scores, whole positions
(all channels at once), as the papers do with pixels.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch

from medlens.core.resize import upsample_to
from medlens.errors import InputError
from medlens.types import Attribution

AttributionLike = Union[torch.Tensor, Attribution]


def attribution_values(attribution: AttributionLike) -> torch.Tensor:
    """The tensor of an :class:`~medlens.types.Attribution` (or the tensor itself)."""
    values = attribution.values if isinstance(attribution, Attribution) else attribution
    if not isinstance(values, torch.Tensor):
        raise InputError(f"an attribution must be a tensor or an Attribution, got {type(values).__name__}")
    return values


def saliency_map(attribution: AttributionLike, spatial: Sequence[int], *, abs: bool = False) -> torch.Tensor:
    """Per-position saliency ``(B, *spatial)`` of an attribution ``(B, C', *s')``.

    Parameters
    ----------
    attribution : torch.Tensor or Attribution
        ``(B, C', *s')`` with ``len(s') == len(spatial)``; ``s'`` may be a layer's resolution,
        which is upsampled (bi/trilinearly) to ``spatial``.
    spatial : sequence of int
        The input's spatial shape.
    abs : bool
        Sum the magnitudes over channels instead of the signed values.
    """
    values = attribution_values(attribution).detach()
    spatial = tuple(int(s) for s in spatial)
    if values.ndim != len(spatial) + 2:
        raise InputError(
            f"attribution of shape {tuple(values.shape)} does not match inputs with spatial shape "
            f"{spatial}: expected (batch, channels, {', '.join(map(str, spatial))})"
        )
    if not values.is_floating_point():
        values = values.float()
    if abs:
        values = values.abs()
    values = upsample_to(values, spatial)
    return values.sum(1)


def as_mask(mask: torch.Tensor, batch: int, spatial: Sequence[int], what: str = "mask") -> torch.Tensor:
    """A boolean mask ``(B, *spatial)`` from ``(B, *spatial)`` or ``(B, 1, *spatial)`` (bool or 0/1)."""
    spatial = tuple(int(s) for s in spatial)
    if not isinstance(mask, torch.Tensor):
        raise InputError(f"{what} must be a tensor, got {type(mask).__name__}")
    if mask.ndim == len(spatial) + 2 and mask.shape[1] == 1:
        mask = mask[:, 0]
    if tuple(mask.shape) != (batch, *spatial):
        raise InputError(f"{what} has shape {tuple(mask.shape)}; expected ({batch}, {', '.join(map(str, spatial))})")
    return mask > 0.5 if mask.is_floating_point() else mask.bool()
