"""What one model evaluation costs, and how many of them a default may spend.

The sampling and perturbation methods (RISE, occlusion, SmoothGrad, Integrated Gradients) need
many model evaluations per input; a count that is right for a 28x28 CNN takes hours on a 3D
ResNet. Their defaults are therefore chosen from the model's cost, counted rather than timed:
the floating-point operations of one forward pass of one input (PyTorch's
:class:`~torch.utils.flop_counter.FlopCounterMode`, which counts convolutions and matrix
products from their shapes). The count depends only on the model and the input's shape, so a
default, and with the same seed the map, is the same on every machine, however fast or busy.

:data:`FLOP_BUDGET` is what a default may spend per input: 2.5 TFLOP, about 15-30 s on two
current CPU cores, so that every method finishes a 64^3 volume through a 3D ResNet-18 in well
under a minute. A backward pass is counted as twice its forward pass. A pass is priced by the
fixed per-operator cost model of :mod:`medlens.core.op_cost` (its predicted time on the reference
machine, in FLOPs at the reference rate: 2.5 TFLOP = 25 s), not by its raw FLOP count.
"""

from __future__ import annotations

import math
import weakref
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from medlens.core.engine import shape_error

FLOP_BUDGET = 2.5e12
GRADIENT_PASSES = 3.0  # a forward and a backward pass, in forward passes

_counted: "weakref.WeakKeyDictionary[nn.Module, dict[tuple, int]]" = weakref.WeakKeyDictionary()


def forward_flops(model: nn.Module, x: torch.Tensor) -> int:
    """Floating-point operations of one forward pass of one input shaped like ``x[0]``.

    Counted on the ``meta`` device when the model allows it (no arithmetic is done), otherwise
    by one real pass of ``x[:1]``; remembered per model and input shape.

    Raises
    ------
    InputError
        The model fails on an input of this shape.
    """
    key = (tuple(x.shape[1:]), x.dtype)
    try:
        known = _counted.setdefault(model, {})
    except TypeError:  # a model that cannot be weakly referenced is counted every time
        known = {}
    if key not in known:
        known[key] = _count_on_meta(model, x[:1])
        if known[key] is None:
            known[key] = _count_for_real(model, x[:1])
    return int(known[key])


def _count_on_meta(model: nn.Module, one: torch.Tensor) -> int | None:
    """The count from a pass with shape-only tensors, or ``None`` if the model needs real values."""
    if isinstance(model, torch.jit.ScriptModule):
        return None
    tensors: dict[str, Any] = {
        name: torch.empty_like(t, device="meta") for name, t in [*model.named_parameters(), *model.named_buffers()]
    }
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            torch.func.functional_call(model, tensors, (one.to("meta"),))
    except Exception:  # data-dependent control flow, .item(), custom kernels: count for real
        return None
    return int(counter.get_total_flops())


def _count_for_real(model: nn.Module, one: torch.Tensor) -> int:
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(one)
    except RuntimeError as err:
        raise shape_error(one.shape, err) from err
    return int(counter.get_total_flops())


def forward_cost(model: nn.Module, x: torch.Tensor) -> int:
    """What one forward pass of one input costs against :data:`FLOP_BUDGET`: its predicted time
    on the reference machine in FLOPs at the reference rate, from the fixed per-operator cost
    model (:func:`medlens.core.op_cost.effective_flops`), so that a DenseNet's memory-bound
    layers and a small-channel 3D convolution's slow kernels count for their time."""
    from medlens.core.op_cost import effective_flops

    return effective_flops(model, x)


def affordable(
    model: nn.Module,
    x: torch.Tensor,
    *,
    passes: float,
    low: int,
    high: int,
    budget: float | None = None,
) -> int:
    """How many evaluations of ``passes`` forward passes each fit in ``budget`` FLOPs (default
    :data:`FLOP_BUDGET`), clamped to ``[low, high]``.

    ``high`` is the method's count for cheap models (its paper's or its usual default), ``low``
    the fewest that still give a usable map.
    """
    per_evaluation = passes * forward_cost(model, x)
    if per_evaluation <= 0:
        return high
    spend = FLOP_BUDGET if budget is None else budget
    return int(min(high, max(low, math.floor(spend / per_evaluation))))


def chosen(model: nn.Module, x: torch.Tensor, values: dict[str, Any], *, reduced: bool) -> dict[str, Any]:
    """The extras of a result whose defaults were chosen from the model's cost.

    ``values`` (e.g. ``{"n_masks": 39}``) go to the result's ``params`` (:func:`medlens.explain`
    moves ``extras["chosen"]`` there); ``reduced`` says they are below the method's usual
    default, which the result's ``note`` then says in words.
    """
    extras: dict[str, Any] = {"chosen": dict(values), "forward_gflop": round(forward_flops(model, x) / 1e9, 3),
                              "forward_cost_gflop": round(forward_cost(model, x) / 1e9, 3)}
    if reduced:
        settings = ", ".join(f"{k}={v}" for k, v in values.items())
        extras["note"] = (
            f"{settings}, chosen to stay within {FLOP_BUDGET / 1e12:g} TFLOP of model evaluation per input "
            f"({extras['forward_gflop']:g} GFLOP per forward pass, priced as {extras['forward_cost_gflop']:g} by the "
            "per-operator cost model); set them for a finer map"
        )
    return extras
