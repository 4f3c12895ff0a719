"""The one table of rank -> layer types: which conv, norm, pool and interpolation mode a 1-D, 2-D or 3-D input uses.

Every shape-generic model, method and resampler looks its layers up here (``conv(2)`` is
``nn.Conv2d``, ``interpolation_mode(3)`` is ``"trilinear"``) instead of keeping its own copy
of the ``{1: ..., 2: ..., 3: ...}`` table.
"""

from __future__ import annotations

from typing import Any, Callable

import torch.nn.functional as F
from torch import nn

from medlens.errors import InputError

RANKS = (1, 2, 3)

_MODULES: dict[str, tuple[Any, Any, Any]] = {
    "conv": (nn.Conv1d, nn.Conv2d, nn.Conv3d),
    "batch_norm": (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d),
    "max_pool": (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d),
    "avg_pool": (nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d),
    "adaptive_avg_pool": (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d),
}
_FUNCTIONS: dict[str, tuple[Callable, Callable, Callable]] = {
    "conv": (F.conv1d, F.conv2d, F.conv3d),
    "max_pool": (F.max_pool1d, F.max_pool2d, F.max_pool3d),
    "avg_pool": (F.avg_pool1d, F.avg_pool2d, F.avg_pool3d),
    "adaptive_avg_pool": (F.adaptive_avg_pool1d, F.adaptive_avg_pool2d, F.adaptive_avg_pool3d),
    "adaptive_max_pool": (F.adaptive_max_pool1d, F.adaptive_max_pool2d, F.adaptive_max_pool3d),
}
_INTERPOLATION = ("linear", "bilinear", "trilinear")

#: Layer classes of every rank, for ``isinstance`` checks.
CONV_TYPES = _MODULES["conv"]
MAX_POOL_TYPES = _MODULES["max_pool"]
AVG_POOL_TYPES = _MODULES["avg_pool"]


def check_rank(rank: int) -> int:
    """``rank`` (the number of spatial dimensions) if it is 1, 2 or 3; an InputError otherwise."""
    if isinstance(rank, bool) or rank not in RANKS:
        raise InputError(f"spatial_dims must be 1, 2 or 3, got {rank!r}")
    return int(rank)


def _module(kind: str, rank: int) -> Any:
    return _MODULES[kind][check_rank(rank) - 1]


def _function(kind: str, rank: int) -> Callable:
    return _FUNCTIONS[kind][check_rank(rank) - 1]


def conv(rank: int) -> type[nn.Module]:
    """``nn.Conv1d`` / ``nn.Conv2d`` / ``nn.Conv3d``."""
    return _module("conv", rank)


def batch_norm(rank: int) -> type[nn.Module]:
    """``nn.BatchNorm1d`` / ``2d`` / ``3d``."""
    return _module("batch_norm", rank)


def max_pool(rank: int) -> type[nn.Module]:
    """``nn.MaxPool1d`` / ``2d`` / ``3d``."""
    return _module("max_pool", rank)


def avg_pool(rank: int) -> type[nn.Module]:
    """``nn.AvgPool1d`` / ``2d`` / ``3d``."""
    return _module("avg_pool", rank)


def adaptive_avg_pool(rank: int) -> type[nn.Module]:
    """``nn.AdaptiveAvgPool1d`` / ``2d`` / ``3d`` (global average pooling with output size 1)."""
    return _module("adaptive_avg_pool", rank)


def conv_fn(rank: int) -> Callable:
    """``F.conv1d`` / ``F.conv2d`` / ``F.conv3d``."""
    return _function("conv", rank)


def max_pool_fn(rank: int) -> Callable:
    """``F.max_pool1d`` / ``2d`` / ``3d``."""
    return _function("max_pool", rank)


def avg_pool_fn(rank: int) -> Callable:
    """``F.avg_pool1d`` / ``2d`` / ``3d``."""
    return _function("avg_pool", rank)


def adaptive_avg_pool_fn(rank: int) -> Callable:
    """``F.adaptive_avg_pool1d`` / ``2d`` / ``3d``."""
    return _function("adaptive_avg_pool", rank)


def adaptive_max_pool_fn(rank: int) -> Callable:
    """``F.adaptive_max_pool1d`` / ``2d`` / ``3d``."""
    return _function("adaptive_max_pool", rank)


def interpolation_mode(rank: int) -> str:
    """The (multi)linear ``F.interpolate`` mode of a rank: ``"linear"``, ``"bilinear"``, ``"trilinear"``."""
    return _INTERPOLATION[check_rank(rank) - 1]
