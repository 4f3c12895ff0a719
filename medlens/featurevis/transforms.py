"""Random transformations applied to the image at every optimisation step.

Optimising an input through a fixed pipeline finds adversarial high-frequency patterns that
excite a unit without resembling anything. Asking the image to keep exciting the unit when it is
shifted, scaled and rotated a little ("transformation robustness", Olah et al., "Feature
Visualization", Distill 2017; Mordvintsev et al. 2015) removes most of them.

Every image transform is a small frozen object called as ``t(x, generator) -> x`` on a batch
``(B, C, *spatial)``; all randomness comes from the ``torch.Generator`` render passes in, so a
seed fixes the result. Unlike Lucid's transforms, they keep the input size (the area uncovered by
a shift, shrink or rotation is filled with ``fill``: by default each image's mean per channel),
so models with a fixed input size (flatten + linear heads) work and a ``neuron`` position keeps
its meaning. :class:`Pad` enlarges the input for fully convolutional models.

:class:`BlurEvery` is of another kind: every ``k`` steps it blurs the *parameterisation* in
place (Yosinski et al., "Understanding neural networks through deep visualization", 2015);
render applies it between steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from medlens.core.blur import gaussian_blur
from medlens.errors import InputError

#: Feature visualisation blurs with mirrored borders, so that a pattern runs on at the edges.
BLUR_MODE = "mirror"

Transform = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _fill_value(x: torch.Tensor, fill: float | None) -> torch.Tensor | float:
    if fill is not None:
        return float(fill)
    # each image's per-channel mean: what is pulled in has no contrast against the image
    return x.detach().reshape(*x.shape[:2], -1).mean(-1).reshape(*x.shape[:2], *([1] * (x.ndim - 2)))


def _choice(values: Sequence[float], n: int, gen: torch.Generator) -> torch.Tensor:
    idx = torch.randint(len(values), (n,), generator=gen)
    return torch.as_tensor(values, dtype=torch.float64)[idx]


@dataclass(frozen=True)
class Jitter:
    """Shift the whole batch by a random whole number of elements in ``[-shift, shift]`` per axis."""

    shift: int
    fill: float | None = None

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        d = int(self.shift)
        if d <= 0:
            return x
        spatial = x.shape[2:]
        offsets = torch.randint(0, 2 * d + 1, (len(spatial),), generator=gen).tolist()
        fill = _fill_value(x, self.fill)
        padded = F.pad(x - fill, [d, d] * len(spatial)) + fill  # (B, C, *(s + 2d))
        index = (slice(None), slice(None), *(slice(o, o + s) for o, s in zip(offsets, spatial)))
        return padded[index]


@dataclass(frozen=True)
class Pad:
    """Pad every spatial axis by ``width`` on both sides (the input grows: fully convolutional models only)."""

    width: int
    fill: float | None = None

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if self.width <= 0:
            return x
        fill = _fill_value(x, self.fill)
        return F.pad(x - fill, [int(self.width)] * (2 * (x.ndim - 2))) + fill


def _affine(x: torch.Tensor, theta: torch.Tensor, fill: float | None) -> torch.Tensor:
    """Resample ``x`` ``(B, C, *spatial)`` at ``theta @ (coords, 1)`` (normalised coordinates).

    ``theta`` is ``(B, n, n+1)`` for ``n = max(2, spatial dims)``; 1D inputs are treated as
    images of height 1. Outside the input, ``fill`` is sampled.
    """
    one_d = x.ndim == 3
    if one_d:
        x = x[:, :, None]  # (B, C, 1, L)
    fill_value = _fill_value(x, fill)
    grid = F.affine_grid(theta.to(dtype=x.dtype, device=x.device), list(x.shape), align_corners=False)
    out = F.grid_sample(x - fill_value, grid, mode="bilinear", padding_mode="zeros", align_corners=False) + fill_value
    return out[:, :, 0] if one_d else out


def _identity_theta(b: int, rank: int) -> torch.Tensor:
    n = max(2, rank)
    return torch.eye(n, n + 1, dtype=torch.float64).repeat(b, 1, 1)


@dataclass(frozen=True)
class RandomAffine:
    """Zoom each image by a factor drawn from ``scales`` (``>1`` enlarges) and rotate it by an
    angle (degrees) drawn from ``angles``, about its centre, in one resampling.

    Rotation acts in the image plane (2D) or in the plane of the last two axes (the axial
    plane of a ``(D, H, W)`` volume); 1D signals can only be scaled. Each image of the batch
    draws its own scale and angle.
    """

    scales: tuple[float, ...] = (1.0,)
    angles: tuple[float, ...] = (0.0,)
    fill: float | None = None

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        b, rank = x.shape[0], x.ndim - 2
        rotates = any(float(a) != 0 for a in self.angles)
        if rotates and rank < 2:
            raise InputError("random rotation needs 2D or 3D inputs; leave it out for 1D signals")
        s = _choice(self.scales, b, gen)  # (B,)
        theta = _identity_theta(b, rank)
        # sampling coordinates shrink by 1/s to enlarge the content by s; in 1D only x is scaled
        for axis in range(rank):
            theta[:, axis, axis] = 1.0 / s
        if rotates:
            a = _choice(self.angles, b, gen) * (math.pi / 180.0)
            h, w = x.shape[-2:]
            cos, sin = torch.cos(a) / s, torch.sin(a) / s
            # affine_grid's first two coordinates are (W, H), each normalised to [-1, 1]: rotate
            # in pixel units, hence the aspect-ratio factors for non-square images
            theta[:, 0, 0] = cos
            theta[:, 0, 1] = -sin * h / w
            theta[:, 1, 0] = sin * w / h
            theta[:, 1, 1] = cos
        return _affine(x, theta, self.fill)


def random_scale(scales: Sequence[float], fill: float | None = None) -> RandomAffine:
    """Zoom each image by a factor drawn from ``scales``."""
    return RandomAffine(scales=tuple(float(v) for v in scales), fill=fill)


def random_rotate(angles: Sequence[float], fill: float | None = None) -> RandomAffine:
    """Rotate each image (2D, or 3D in the axial plane) by an angle in degrees drawn from ``angles``."""
    return RandomAffine(angles=tuple(float(v) for v in angles), fill=fill)


def jitter(shift: int, fill: float | None = None) -> Jitter:
    """Shift the batch by up to ``shift`` elements along every axis."""
    return Jitter(int(shift), fill)


def pad(width: int, fill: float | None = None) -> Pad:
    """Pad by ``width`` on every side (the input grows)."""
    return Pad(int(width), fill)


@dataclass(frozen=True)
class Blur:
    """Blur the transformed image at every step with a Gaussian of ``sigma`` elements."""

    sigma: float

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        return gaussian_blur(x, self.sigma, mode=BLUR_MODE)


@dataclass(frozen=True)
class BlurEvery:
    """Every ``every`` steps, blur the parameterised field in place with a Gaussian of ``sigma``.

    Render applies it after the optimiser step (Yosinski et al. 2015); it is not an image
    transform and is skipped by :func:`apply`.
    """

    every: int
    sigma: float = 0.5

    def __post_init__(self) -> None:
        if int(self.every) < 1 or not self.sigma > 0:
            raise InputError(f"BlurEvery needs every >= 1 and sigma > 0, got every={self.every}, sigma={self.sigma}")


def apply(transforms: Sequence[Transform | BlurEvery], x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Apply the image transforms of ``transforms`` in order (skipping :class:`BlurEvery`)."""
    for t in transforms:
        if not isinstance(t, BlurEvery):
            x = t(x, gen)
    return x


def default_transforms(spatial: Sequence[int], fill: float | None = None) -> list:
    """Lucid's standard robustness transforms, scaled from 224x224 images to ``spatial``.

    Jitter of ``8/224`` of the largest side (at least 1), a random scale in ``[0.9, 1.1]`` and
    a random rotation in ``[-10, 10]`` degrees (2D and 3D; zero a quarter of the time), a
    second jitter of half the first.
    """
    spatial = tuple(int(s) for s in spatial)
    size = max(spatial)
    shift = max(1, round(size * 8 / 224))
    scales = tuple(1 + (i - 5) / 50 for i in range(11))
    angles = tuple(float(a) for a in range(-10, 11)) + (0.0,) * 5 if len(spatial) >= 2 else (0.0,)
    # scale and rotation in one resampling: half the interpolation blur and cost of two
    return [Jitter(shift, fill), RandomAffine(scales, angles, fill), Jitter(max(1, shift // 2), fill)]


def blur(sigma: float) -> Blur:
    """Blur the transformed image at every step."""
    return Blur(float(sigma))


def blur_every(every: int, sigma: float = 0.5) -> BlurEvery:
    """Blur the parameterised field in place every ``every`` steps (render applies it)."""
    return BlurEvery(int(every), float(sigma))
