"""The one baseline resolver: what "absent" means for an input.

Integrated gradients integrates from a baseline, occlusion and RISE replace covered elements by
it, deletion and insertion replace removed positions by it. All of them resolve a user's choice
here, so ``"blur"`` means the same blur everywhere.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Sequence

import torch

from medlens.core.blur import gaussian_blur
from medlens.errors import InputError

BaselineLike = Any  # "zero" | "blur" | "mean" | float | torch.Tensor | None

#: The "blur" baseline's sigma along each axis, as a fraction of that axis's length, and at
#: least one element: at 64 pixels sigma is 4, which removes lesion-sized detail while keeping
#: the coarse anatomy (Sturmfels et al. 2020, "Visualizing the impact of feature attribution
#: baselines", discuss blurred baselines).
BLUR_FRACTION = 1 / 16


def default_blur_sigma(spatial: Sequence[int]) -> list[float]:
    """Per-axis sigma of the ``"blur"`` baseline: ``max(1, BLUR_FRACTION * n)``."""
    return [max(1.0, BLUR_FRACTION * int(n)) for n in spatial]


def resolve_baseline(x: torch.Tensor, baseline: BaselineLike, *, blur_sigma: float | None = None) -> torch.Tensor:
    """The reference input of each sample, ``(B, C, *spatial)`` (possibly an expanded view).

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)``.
    baseline : {"zero", "blur", "mean"}, float, torch.Tensor or None
        ``"zero"`` or ``None``: all zeros; ``"blur"``: each sample blurred by a Gaussian
        (:func:`medlens.core.blur.gaussian_blur`, edges repeated) of ``blur_sigma`` or, by
        default, :func:`default_blur_sigma`; ``"mean"``: each sample's per-channel mean; a
        number: that constant; a tensor broadcastable to ``x``.
    blur_sigma : float, optional
        Blur width in elements for ``"blur"``, the same along every axis.
    """
    if baseline is None or (isinstance(baseline, str) and baseline == "zero"):
        return torch.zeros((), dtype=x.dtype, device=x.device).expand(x.shape)
    if isinstance(baseline, str):
        if baseline == "blur":
            if blur_sigma is not None and not (isinstance(blur_sigma, Real) and blur_sigma > 0):
                raise InputError(f"blur_sigma must be positive, got {blur_sigma!r}")
            sigma = default_blur_sigma(x.shape[2:]) if blur_sigma is None else float(blur_sigma)
            return gaussian_blur(x, sigma, mode="nearest")
        if baseline == "mean":
            dims = tuple(range(2, x.ndim))
            return x.mean(dim=dims, keepdim=True).expand(x.shape)
        raise InputError(f"unknown baseline {baseline!r}; use 'zero', 'blur', 'mean', a number or a tensor")
    if isinstance(baseline, Real) and not isinstance(baseline, bool):
        if not math.isfinite(float(baseline)):
            raise InputError(f"the baseline must be finite, got {baseline!r}")
        return torch.full((), float(baseline), dtype=x.dtype, device=x.device).expand(x.shape)
    if isinstance(baseline, torch.Tensor):
        try:
            shape = torch.broadcast_shapes(baseline.shape, x.shape)
        except RuntimeError:
            shape = None
        if shape != x.shape:
            raise InputError(
                f"a baseline of shape {tuple(baseline.shape)} does not broadcast to the input "
                f"shape {tuple(x.shape)}"
            )
        if baseline.is_floating_point() and not torch.isfinite(baseline).all():
            raise InputError("the baseline contains NaN or infinite values")
        return baseline.to(dtype=x.dtype, device=x.device).expand(x.shape)
    raise InputError(
        f"the baseline must be 'zero', 'blur', 'mean', a number or a tensor, got {type(baseline).__name__}"
    )
