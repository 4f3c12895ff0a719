"""Tokens back to a grid: find the class tokens and the patch grid of a ``(B, N, D)`` token layer.

A vision transformer cuts its input ``(B, C, *spatial)`` into patches, one token each, in
row-major order (a strided convolution flattened, MONAI's ``PatchEmbeddingBlock`` either way),
and may put ``k`` extra tokens (a class token, register tokens) in front. Given ``N`` and the
input's spatial shape, :func:`token_grid` finds ``k`` and the grid, 2D or 3D, square or not:
among the grids whose sides divide the input's sides and whose size is ``N - k``, the one with
the most even patch sides (equal sides first), then the fewest extra tokens. A patch size read
from the model (:func:`patch_size`, the first convolution whose stride equals its kernel) or
given decides where the input's shape alone would not.

:func:`as_feature_map` turns a token layer's output (and its gradient) into the
``(B, D, *grid)`` feature map the CAM family expects, so Grad-CAM and FastCAM work on token
layers without a user reshape function.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from medlens.core.hooks import CONV_TYPES
from medlens.errors import InputError

#: At most this many extra tokens (class token, distillation token, registers) before the patches.
MAX_PREFIX = 8


@dataclass(frozen=True)
class TokenGrid:
    """Where the patches sit among ``N`` tokens.

    Attributes
    ----------
    prefix : int
        Extra tokens in front of the patch tokens (1 for a class token, 0 for none).
    grid : tuple of int
        Patches along each spatial axis, row-major like the tokens.
    """

    prefix: int
    grid: tuple[int, ...]

    @property
    def n_patches(self) -> int:
        return math.prod(self.grid)

    @property
    def n_tokens(self) -> int:
        return self.prefix + self.n_patches


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def token_grid(n_tokens: int, spatial: Sequence[int], patch: Sequence[int] | int | None = None) -> TokenGrid:
    """The extra tokens and patch grid of ``n_tokens`` tokens of an input with sides ``spatial``.

    Parameters
    ----------
    n_tokens : int
    spatial : sequence of int
        The input's spatial shape (2 or 3 sides, or 1 for signals).
    patch : int or sequence of int, optional
        The patch sides, when known; then the grid is ``spatial // patch`` and only the extra
        tokens are found.

    Raises
    ------
    InputError
        No grid of at most ``MAX_PREFIX`` extra tokens fits.
    """
    spatial = tuple(int(s) for s in spatial)
    if patch is not None:
        sides = (int(patch),) * len(spatial) if isinstance(patch, int) else tuple(int(p) for p in patch)
        if len(sides) == len(spatial) and all(p > 0 for p in sides):
            grid = tuple(max(1, s // p) for s, p in zip(spatial, sides))
            if 0 <= n_tokens - math.prod(grid) <= MAX_PREFIX:
                return TokenGrid(n_tokens - math.prod(grid), grid)
    best: tuple[tuple[float, int], TokenGrid] | None = None
    options = [_divisors(s) for s in spatial]
    for grid in itertools.product(*options):
        prefix = n_tokens - math.prod(grid)
        if not 0 <= prefix <= MAX_PREFIX:
            continue
        sides = [s / g for s, g in zip(spatial, grid)]
        key = (max(sides) / min(sides), prefix)
        if best is None or key < best[0]:
            best = (key, TokenGrid(prefix, tuple(grid)))
    if best is None:
        raise InputError(
            f"{n_tokens} tokens do not form a patch grid of an input of size {'x'.join(map(str, spatial))} "
            f"(with up to {MAX_PREFIX} class or register tokens in front)"
        )
    return best[1]


def patch_size(model: nn.Module) -> tuple[int, ...] | None:
    """The patch sides of a patch-embedding convolution (the first whose stride equals its
    kernel size and exceeds 1), or ``None``."""
    for m in model.modules():
        if isinstance(m, CONV_TYPES):
            k, s = tuple(m.kernel_size), tuple(m.stride)
            if k == s and max(s) > 1:
                return s
            return None
    return None


def is_token_layer(activation: torch.Tensor, spatial: Sequence[int]) -> bool:
    """``(B, N, D)`` tokens of an input with 2 or 3 spatial axes (not a 1D feature map, which is
    also three-dimensional: for signals, tokens are not told apart)."""
    return activation.ndim == 3 and len(tuple(spatial)) >= 2


def as_feature_map(tokens: torch.Tensor, spatial: Sequence[int], grid: TokenGrid | None = None) -> torch.Tensor:
    """``(B, N, D)`` tokens as a ``(B, D, *grid)`` map of the patch tokens (extra tokens dropped)."""
    grid = grid or token_grid(tokens.shape[1], spatial)
    b, _, d = tokens.shape
    return tokens[:, grid.prefix:].transpose(1, 2).reshape(b, d, *grid.grid)


def feature_maps(activation: torch.Tensor, gradient: torch.Tensor | None, spatial: Sequence[int]
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A layer's activation and gradient as feature maps: token layers reshaped by
    :func:`as_feature_map` (one grid for both), anything else as it is."""
    if not is_token_layer(activation, spatial):
        return activation, gradient
    grid = token_grid(activation.shape[1], spatial)
    return as_feature_map(activation, spatial, grid), None if gradient is None else as_feature_map(gradient, spatial, grid)


def patch_map(values: torch.Tensor, grid: TokenGrid) -> torch.Tensor:
    """Per-patch values ``(B, n_patches)`` as ``(B, 1, *grid)``."""
    return values.reshape(values.shape[0], 1, *grid.grid)
