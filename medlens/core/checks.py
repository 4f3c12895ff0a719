"""Checks every model-running function shares: a valid input batch, eval mode, clear errors."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn

from medlens.core import engine
from medlens.core.engine import Budget
from medlens.errors import InputError, MedlensError


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
        raise InputError(f"the input has shape {tuple(x.shape)}; expected (batch, channels, *spatial) with "
                         f"1 to 3 spatial dimensions: {_missing_axes(x)}")
    if x.shape[0] == 0:
        raise InputError("the input batch is empty")
    # One pass without a temporary: a NaN or an infinity makes the sum non-finite. Only then
    # (or when finite values overflow the sum) is the input scanned element by element.
    if x.is_floating_point() and not torch.isfinite(x.sum()):
        bad = ~torch.isfinite(x)
        if bad.any():
            kind = "NaN" if torch.isnan(x).any() else "infinite"
            raise InputError(f"the input contains {int(bad.sum())} {kind} value(s)")
    return x


def _missing_axes(x: torch.Tensor) -> str:
    """What a too-flat input most likely is, and what to do with it."""
    if x.ndim == 2 and not x.is_floating_point():
        return ("integer rows look like token ids, which have no gradient: explain them with "
                "medlens.token_attributions(model, input_ids, attention_mask, method) (through the model's "
                "embedding layer), or a medlens text model's notes (medlens explain --input note.txt)")
    if x.ndim == 2:
        return ("for one image add the batch and channel dimensions (x[None, None]); for a batch of one-channel "
                "signals add the channel dimension (x[:, None]); feature vectors (tabular data) are not explained")
    return "add the batch and channel dimensions (x[None, None])"


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


def check_fits_model(model: nn.Module, x: torch.Tensor) -> None:
    """Raise ``InputError`` if the model declares an ``input_shape`` that ``x`` does not have."""
    expected = getattr(model, "input_shape", None)
    if expected is not None and tuple(x.shape[1:]) != tuple(expected):
        raise InputError(
            f"input of shape {tuple(x.shape)} does not fit the model, which expects "
            f"(batch, {', '.join(map(str, expected))})"
        )


def model_outputs(model: nn.Module, x: torch.Tensor, budget: Budget = Budget()) -> torch.Tensor:
    """Forward pass through the engine that turns a shape mismatch into a clear error."""
    check_fits_model(model, x)
    return engine.forward(model, x, budget)  # the engine checks the shape and the outputs


@contextmanager
def model_failures_named(model: nn.Module, x: torch.Tensor) -> Iterator[None]:
    """Turn a failure of the model itself on ``x`` anywhere in the block (a method's own probe
    pass, not only the engine's first chunk) into one line that names the input's shape, with a
    hint when ``x`` is one sample without its batch dimension.

    Only on failure, the model is called on the first sample alone: if that fails too, the
    model cannot take the input and :func:`medlens.core.engine.shape_error` says why; if it
    runs, the failure was not the input's and is raised as it was. A run that succeeds costs
    nothing.
    """
    try:
        yield
    except MedlensError as err:
        if not _model_failure(err.__cause__):
            raise
        raise _with_batch_hint(model, x, err) from err.__cause__  # the engine's line about its first chunk
    except engine.MODEL_CALL_ERRORS as err:
        refusal = _refusal(model, x[:1])
        if refusal is None:
            raise
        raise _with_batch_hint(model, x, refusal) from err


def _model_failure(err: BaseException | None) -> bool:
    return isinstance(err, engine.MODEL_CALL_ERRORS) and not isinstance(err, MedlensError)


def _with_batch_hint(model: nn.Module, x: torch.Tensor, err: MedlensError) -> MedlensError:
    """``err``, told to add the batch dimension when the model takes ``x`` as one sample (a
    ``(C, H, W)`` image read as a batch of ``C`` signals)."""
    if x.ndim < 5 and _refusal(model, x[None]) is None:
        shape = ", ".join(map(str, x.shape))
        return InputError(f"{err}; for one sample of shape ({shape}), add the batch dimension (x[None])")
    return err


def _refusal(model: nn.Module, x: torch.Tensor) -> InputError | None:
    """The one-line error when ``model`` cannot take ``x``, else ``None``."""
    try:
        with torch.inference_mode():
            model(x)
    except MedlensError:
        return None
    except engine.MODEL_CALL_ERRORS as err:
        return engine.shape_error(x.shape, err)
    return None
