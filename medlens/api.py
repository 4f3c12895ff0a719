"""The public entry points: :func:`explain` and :func:`methods`."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn

from medlens.core import engine
from medlens.core.engine import Budget
from medlens.core.registry import get_method, method_names
from medlens.core.targets import TargetLike, to_target
from medlens.errors import InputError, UnknownNameError
from medlens.types import Attribution


def methods() -> list[str]:
    """Names of the registered attribution methods, usable as ``explain(method=...)``."""
    return method_names()


def check_input(x: Any, *, min_dims: int = 3) -> torch.Tensor:
    """Validate a model input batch: a tensor ``(B, C, *spatial)`` of finite floats.

    Raises
    ------
    InputError
        Not a tensor, too few dimensions, an empty batch, or NaN/inf values.
    """
    if not isinstance(x, torch.Tensor):
        raise InputError(f"the input must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < min_dims:
        raise InputError(
            f"the input has shape {tuple(x.shape)}; expected (batch, channels, *spatial) with "
            "1 to 3 spatial dimensions: add the batch and channel dimensions (x[None, None])"
        )
    if x.shape[0] == 0:
        raise InputError("the input batch is empty")
    if x.is_floating_point():
        bad = ~torch.isfinite(x)
        if bad.any():
            kind = "NaN" if torch.isnan(x).any() else "infinite"
            raise InputError(f"the input contains {int(bad.sum())} {kind} value(s)")
    return x


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put the model in eval mode for the block and restore every module's flag after."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in flags:
            m.training = training


def model_outputs(model: nn.Module, x: torch.Tensor, budget: Budget = Budget()) -> torch.Tensor:
    """Forward pass through the engine that turns a shape mismatch into a clear error."""
    expected = getattr(model, "input_shape", None)
    if expected is not None and tuple(x.shape[1:]) != tuple(expected):
        raise InputError(
            f"input of shape {tuple(x.shape)} does not fit the model, which expects "
            f"(batch, {', '.join(map(str, expected))})"
        )
    try:
        out = engine.forward(model, x, budget)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"input of shape {tuple(x.shape)} does not fit the model: {first}") from err
    if out.is_floating_point() and not torch.isfinite(out).all():
        raise InputError("the model produced NaN or infinite outputs for this input")
    return out


def explain(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike = None,
    method: str = "gradient",
    *,
    batch_size: int | None = None,
    memory_mb: float | None = None,
    **options: Any,
) -> Attribution:
    """Explain the model's decision for each input of a batch.

    Parameters
    ----------
    model : nn.Module
        A classifier returning ``(B, K)`` scores. It is run in eval mode; its training
        flags are restored afterwards.
    x : torch.Tensor
        ``(B, C, L)`` signals, ``(B, C, H, W)`` images or ``(B, C, D, H, W)`` volumes.
    target : int, sequence, tensor, callable or None
        Class to explain (one for all, or one per sample), or a callable from model output to
        one score per sample. ``None`` explains the predicted class.
    method : str
        A name from :func:`methods`.
    batch_size, memory_mb : optional
        How many inputs the engine evaluates at once (see :class:`medlens.core.engine.Budget`).
    **options
        Method options, e.g. ``abs=True`` for ``gradient``.

    Returns
    -------
    Attribution
    """
    info = get_method(method)
    known = info.options()
    unknown = sorted(set(options) - set(known))
    if unknown:
        listed = ", ".join(known) or "none"
        raise UnknownNameError(f"method {method!r} has no option {unknown[0]!r}; its options: {listed}")
    x = check_input(x)
    budget = Budget(batch_size, memory_mb)
    with evaluation_mode(model):
        x = x.to(engine.model_device(model))
        # The predicted class needs the whole batch's output; an explicit target is checked
        # against the first sample's (shape, class count), sparing single-pass methods a pass.
        probe = x if target is None else x[:1]
        tgt = to_target(target, model_outputs(model, probe, budget), batch=len(x))
        start = time.perf_counter()
        result = info.fn(model, x, tgt, budget=budget, **options)
        seconds = time.perf_counter() - start
    values, extras = result if isinstance(result, tuple) else (result, {})
    params = {**known, **options}
    return Attribution(
        values=values.detach(),
        method=method,
        target=tgt.class_indices().cpu(),
        params=params,
        seconds=seconds,
        extras=extras,
    )
