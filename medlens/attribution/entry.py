"""Straight-line paths through an affine first layer: integrated gradients without re-running it.

Along the path ``x(a) = x' + a (x - x')`` the output of an affine first layer ``L`` (a
convolution, whatever its padding) is ``L(x(a)) = L(x') + a (L(x) - L(x'))``: two evaluations of
``L`` give it at every step. And when the model reads its input only through ``L``, the input
gradient is ``J_L^T g(a)`` with ``g(a)`` the gradient at ``L``'s output, so the weighted sum of
input gradients the path integral needs is ``J_L^T (sum_k w_k g(a_k))``: one backward pass
through ``L`` instead of one per step. The first convolution of a 3D CNN runs at full
resolution and is its most expensive layer; skipping its forward and backward passes at every
step takes integrated gradients below the cost of ``n_steps`` full gradient evaluations, with
the same result up to floating-point rounding.

Safety: the candidate is the model's first convolution. A check pass feeds a NaN input with
the layer short-circuited to return ``L(x)`` for the first sample; the shortcut is used only if
the layer took exactly that input and the model's output equals ``F(x)``, i.e. nothing else in
the model read the (NaN) input, and the model did not change the layer's output in place (an
in-place activation right after it). Otherwise integrated gradients evaluate the full model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from medlens.attribution.incremental import Prepared, short_circuit
from medlens.core import engine
from medlens.core.hooks import CONV_TYPES
from medlens.core.engine import Budget



@dataclass
class Entry:
    """The model's affine first layer and its original (un-hooked) forward function."""

    module: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]

    def input_gradient(self, like: torch.Tensor, output_gradient: torch.Tensor) -> torch.Tensor:
        """``J_L^T output_gradient``: one backward pass through the layer (it is affine)."""
        point = torch.zeros_like(like).requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(self.forward(point), point, grad_outputs=output_gradient)
        return grad


def find_entry(model: nn.Module, x: torch.Tensor, output: torch.Tensor) -> Entry | None:
    """The affine layer through which alone ``model`` reads its input, or ``None``.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)``; the check uses the first sample.
    output : torch.Tensor
        ``model(x[:1])``, ``(1, K)``, computed by the caller.
    """
    first = next((m for m in model.modules() if isinstance(m, CONV_TYPES)), None)
    if first is None or "forward" in vars(first):
        return None
    entry = Entry(first, type(first).forward.__get__(first))
    poisoned = torch.full_like(x[:1], float("nan"))
    try:
        with torch.no_grad():  # not inference mode: the tensor keeps a version counter
            layer_output = entry.forward(x[:1])
    except RuntimeError:
        return None  # the first convolution does not take the input as it is (e.g. a slice of it)
    version = layer_output._version
    probe = Prepared(poisoned, [layer_output])
    with short_circuit([first], lambda: probe) as hits:
        checked = engine.run(
            model, 1, lambda start, stop: poisoned, budget=Budget(batch_size=1), finite_outputs=False
        ).outputs
    if hits[0] != 1 or not bool(torch.isfinite(checked).all()):
        return None
    if layer_output._version != version:
        return None  # the model changes the layer's output in place (ReLU(inplace=True) right after it):
        # the path's points at that output are leaves that require grad, which no in-place operation may touch
    if not torch.allclose(checked, output, rtol=1e-4, atol=1e-6):
        return None
    return entry
