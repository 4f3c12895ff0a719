"""Shared helpers of the metrics: attribution maps, masks, Gaussian filtering.

Every metric compares attributions *per position* of the input: an attribution ``(B, C', *s')``
becomes a saliency map ``(B, *spatial)`` by summing its channels (signed: evidence for and
against the class cancel, as they do in the model's score) after upsampling layer-resolution
maps (Grad-CAM) to the input size. Deletion removes, and localisation scores, whole positions
(all channels at once), as the papers do with pixels.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import torch
import torch.nn.functional as F

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


def saliency_map(attribution: AttributionLike, spatial: Sequence[int], *, absolute: bool = False) -> torch.Tensor:
    """Per-position saliency ``(B, *spatial)`` of an attribution ``(B, C', *s')``.

    Parameters
    ----------
    attribution : torch.Tensor or Attribution
        ``(B, C', *s')`` with ``len(s') == len(spatial)``; ``s'`` may be a layer's resolution,
        which is upsampled (bi/trilinearly) to ``spatial``.
    spatial : sequence of int
        The input's spatial shape.
    absolute : bool
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
    if absolute:
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


def gaussian_kernel(sigma: float, radius: int | None = None, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 1D Gaussian ``(2 * radius + 1,)``; default radius ``ceil(4 sigma)``."""
    if radius is None:
        radius = max(1, math.ceil(4.0 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(dtype)


def separable_filter(x: torch.Tensor, kernel: torch.Tensor, *, padding: str = "replicate") -> torch.Tensor:
    """Filter every spatial axis of ``x`` ``(B, C, *spatial)`` with the 1D ``kernel``.

    ``padding="replicate"`` keeps the shape; ``"valid"`` shrinks each axis by ``len(kernel)-1``.
    """
    kernel = kernel.to(dtype=x.dtype, device=x.device)
    half = (len(kernel) - 1) // 2
    out = x
    for axis in range(2, x.ndim):
        moved = out.movedim(axis, -1)
        shape = moved.shape
        flat = moved.reshape(-1, 1, shape[-1])  # (B * C * other axes, 1, L)
        if padding == "replicate":
            flat = F.pad(flat, (half, half), mode="replicate")
        flat = F.conv1d(flat, kernel.view(1, 1, -1))
        out = flat.reshape(*shape[:-1], flat.shape[-1]).movedim(-1, axis)
    return out


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur of ``(B, C, *spatial)`` over all spatial axes (edges replicated).

    The radius is capped at the smallest axis so that short signals can still be blurred.
    """
    radius = max(1, min(math.ceil(4.0 * sigma), min(x.shape[2:]) - 1))
    return separable_filter(x, gaussian_kernel(sigma, radius), padding="replicate")


def default_blur_sigma(spatial: Sequence[int]) -> float:
    """A blur that removes lesion-sized detail: 1/16 of the largest axis (4 px at 64)."""
    return max(1.0, max(spatial) / 16.0)
