"""The one n-D Gaussian blur of medlens, with explicit truncation and padding.

Every blur in the package (the "blur" baseline of path and perturbation methods, the blurred
substrate of deletion/insertion, the edge-detector baseline map, SSIM windows, the smoothing
transforms of feature visualisation) is this function, so one definition holds everywhere:

- the kernel is a sampled Gaussian normalised to sum 1, truncated at ``truncate`` standard
  deviations: radius ``int(truncate * sigma + 0.5)``, as ``scipy.ndimage.gaussian_filter``;
- ``mode`` names the border handling with scipy's names: ``"nearest"`` (repeat the edge value),
  ``"mirror"`` (reflect about the edge sample: ``c b | a b c``), ``"reflect"`` (reflect about
  the edge: ``b a | a b c``), ``"constant"`` (zeros), or ``"valid"`` (no padding: each axis
  shrinks by ``2 * radius``).

With these two choices the result equals ``scipy.ndimage.gaussian_filter(x, sigma,
truncate=truncate, mode=mode)`` on every spatial axis (``tests/core/test_blur.py``), as long as
the radius is shorter than the axis; on shorter axes the radius is capped at the axis length
minus one, so that even a short signal can be blurred.
"""

from __future__ import annotations

from typing import Sequence, Union

import torch
import torch.nn.functional as F

Sigma = Union[float, Sequence[float]]
MODES = ("nearest", "mirror", "reflect", "constant", "valid")
DEFAULT_TRUNCATE = 4.0


def kernel_radius(sigma: float, truncate: float = DEFAULT_TRUNCATE) -> int:
    """Half-width of the truncated kernel: ``int(truncate * sigma + 0.5)`` (scipy's rule)."""
    return int(truncate * float(sigma) + 0.5)


def gaussian_kernel(sigma: float, radius: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Normalised 1D Gaussian ``(2 * radius + 1,)`` sampled at integer offsets."""
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / float(sigma)) ** 2)
    return (k / k.sum()).to(dtype)


def gaussian_blur(
    x: torch.Tensor, sigma: Sigma, *, truncate: float = DEFAULT_TRUNCATE, mode: str = "nearest"
) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, *spatial)`` over the spatial axes.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)`` with 1 to 3 spatial axes.
    sigma : float or sequence of float
        Standard deviation in elements, one for all spatial axes or one per axis; an axis with
        sigma 0 is left alone.
    truncate : float
        Kernel half-width in standard deviations.
    mode : {"nearest", "mirror", "reflect", "constant", "valid"}
        Border handling (see the module docstring).

    Returns
    -------
    torch.Tensor
        Same shape as ``x`` (``"valid"``: each blurred axis shorter by twice its radius).
    """
    if mode not in MODES:
        raise ValueError(f"unknown blur mode {mode!r}; use one of {', '.join(MODES)}")
    n_spatial = x.ndim - 2
    sigmas = [float(sigma)] * n_spatial if isinstance(sigma, (int, float)) else [float(s) for s in sigma]
    if len(sigmas) != n_spatial:
        raise ValueError(f"got {len(sigmas)} sigmas for {n_spatial} spatial axes")
    out = x
    for axis, s in zip(range(2, x.ndim), sigmas):
        if s <= 0:
            continue
        length = out.shape[axis]
        radius = kernel_radius(s, truncate)
        if mode != "valid":
            radius = min(radius, length - 1)
        if radius < 1:
            continue
        kernel = gaussian_kernel(s, radius, x.dtype).to(x.device).view(1, 1, -1)
        moved = out.movedim(axis, -1)
        shape = moved.shape
        rows = moved.reshape(-1, 1, shape[-1])  # (everything else, 1, L)
        rows = F.conv1d(_pad(rows, radius, mode), kernel)
        out = rows.reshape(*shape[:-1], rows.shape[-1]).movedim(-1, axis)
    return out


def _pad(rows: torch.Tensor, radius: int, mode: str) -> torch.Tensor:
    if mode == "valid":
        return rows
    if mode == "nearest":
        return F.pad(rows, (radius, radius), mode="replicate")
    if mode == "mirror":
        return F.pad(rows, (radius, radius), mode="reflect")
    if mode == "constant":
        return F.pad(rows, (radius, radius))
    # "reflect": the edge sample is repeated (b a | a b c), i.e. mirror about the edge itself
    left = rows[..., :radius].flip(-1)
    right = rows[..., -radius:].flip(-1)
    return torch.cat([left, rows, right], dim=-1)


def blur_sigma_for(spatial: Sequence[int], fraction: float) -> list[float]:
    """One sigma per axis, ``fraction`` of that axis's length (e.g. 1/8 for a "blur" baseline)."""
    return [fraction * n for n in spatial]


__all__ = ["DEFAULT_TRUNCATE", "MODES", "blur_sigma_for", "gaussian_blur", "gaussian_kernel", "kernel_radius"]
