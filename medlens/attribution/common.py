"""Helpers shared by the attribution methods: per-dimension options, baselines, seeds.

Everything here is shape-generic: an input is ``(B, C, *spatial)`` with 1, 2 or 3 spatial
dimensions, and nothing branches on the rank.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medlens.core.hooks import on_leaf_calls
from medlens.errors import InputError

BaselineLike = Any  # "zero" | "blur" | "mean" | float | torch.Tensor | None


def per_dim(value: int | Sequence[int], n_dims: int, name: str, *, minimum: int = 1) -> tuple[int, ...]:
    """An option given as one int or one int per spatial dimension, as a tuple of ``n_dims`` ints.

    Raises
    ------
    InputError
        Not an int or a sequence of ``n_dims`` ints, or a value below ``minimum``.
    """
    if isinstance(value, bool):
        raise InputError(f"{name} must be an integer or one integer per spatial dimension, got {value!r}")
    if isinstance(value, int):
        values = (value,) * n_dims
    elif isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        values = tuple(value)
        if len(values) != n_dims:
            raise InputError(
                f"{name} has {len(values)} value(s) but the input has {n_dims} spatial dimension(s)"
            )
    else:
        raise InputError(f"{name} must be an integer or one integer per spatial dimension, got {value!r}")
    if any(v < minimum for v in values):
        raise InputError(f"{name} must be at least {minimum}, got {value!r}")
    return values


def view_rows(values: torch.Tensor, ndim: int) -> torch.Tensor:
    """``(N,)`` per-row values shaped ``(N, 1, ..., 1)`` to broadcast over ``ndim``-dim rows."""
    return values.reshape((-1,) + (1,) * (ndim - 1))


def spatial_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum of ``(B, *rest)`` over everything but the batch dimension: ``(B,)``."""
    return values.reshape(values.shape[0], -1).sum(1)


def gaussian_blur(x: torch.Tensor, sigma: Sequence[float]) -> torch.Tensor:
    """Separable Gaussian blur of ``(B, C, *spatial)`` with one ``sigma`` per spatial dim.

    Edges are replicated so that a blurred image keeps its border intensity.
    """
    out = x
    for d, s in enumerate(sigma):
        if s <= 0:
            continue
        radius = max(1, math.ceil(3 * s))
        grid = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
        kernel = torch.exp(-0.5 * (grid / s) ** 2)
        kernel = (kernel / kernel.sum()).view(1, 1, -1)
        moved = out.movedim(2 + d, -1)  # blur dimension last: (..., L)
        shape = moved.shape
        rows = moved.reshape(-1, 1, shape[-1])  # (B * C * other dims, 1, L)
        rows = F.pad(rows, (radius, radius), mode="replicate")
        out = F.conv1d(rows, kernel).reshape(shape).movedim(-1, 2 + d)
    return out


BLUR_FRACTION = 1 / 8  # sigma of the "blur" baseline, as a fraction of each spatial size


def resolve_baseline(x: torch.Tensor, baseline: BaselineLike) -> torch.Tensor:
    """The reference input of each sample, ``(B, C, *spatial)`` (possibly an expanded view).

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)``.
    baseline : {"zero", "blur", "mean"}, float, torch.Tensor or None
        ``"zero"`` or ``None``: all zeros; ``"blur"``: each sample blurred by a Gaussian whose
        sigma is an eighth of each spatial size (Sturmfels et al. 2020, "Visualizing the
        impact of feature attribution baselines"); ``"mean"``: each sample's per-channel
        mean; a number: that constant; a tensor broadcastable to ``x``.
    """
    if baseline is None or (isinstance(baseline, str) and baseline == "zero"):
        return torch.zeros((), dtype=x.dtype, device=x.device).expand(x.shape)
    if isinstance(baseline, str):
        if baseline == "blur":
            return gaussian_blur(x, [BLUR_FRACTION * n for n in x.shape[2:]])
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


def check_count(value: Any, name: str, *, minimum: int = 1) -> int:
    """A positive integer option (number of steps, samples, masks)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer of at least {minimum}, got {value!r}")
    return value


def check_fraction(value: Any, name: str, *, low: float, high: float, open_low: bool = True) -> float:
    """A real option within ``(low, high]`` (or ``[low, high]`` when ``open_low`` is False)."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = (v > low if open_low else v >= low) and v <= high
    if not ok:
        bracket = "(" if open_low else "["
        raise InputError(f"{name} must be a number in {bracket}{low}, {high}], got {value!r}")
    return float(value)


def check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an integer, got {seed!r}")
    return seed


def row_seeds(seed: int, n: int) -> list[int]:
    """``n`` seeds derived from ``seed``: one independent generator per random draw.

    Drawing each perturbation from its own generator keeps results identical whatever the
    engine's chunk size, and identical for a sample explained alone or within a batch.
    """
    gen = torch.Generator().manual_seed(check_seed(seed))
    return torch.randint(0, 2**62, (n,), generator=gen).tolist()


def layer_trace(model: nn.Module, sample: torch.Tensor) -> list[tuple[nn.Module, torch.Size, int]]:
    """Leaf modules in execution order for one input ``(1, C, *spatial)``.

    Returns ``(module, output shape, number of calls of that module in the pass)`` per call:
    a module called more than once (a shared activation) has an ambiguous output.
    """
    from medlens.core import engine
    from medlens.core.engine import Budget

    log: list[tuple[nn.Module, torch.Size]] = []

    def record(module, _inputs, output):
        if isinstance(output, torch.Tensor):
            log.append((module, output.shape))

    with on_leaf_calls(model, record):
        engine.run(model, 1, sample, budget=Budget(batch_size=1))
    calls: dict[int, int] = {}
    for module, _ in log:
        calls[id(module)] = calls.get(id(module), 0) + 1
    return [(module, shape, calls[id(module)]) for module, shape in log]
