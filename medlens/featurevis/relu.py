"""Redirected ReLU gradients: a way out for units that are silent at the starting image.

A ReLU unit that is negative everywhere on the starting image passes no gradient, so gradient
ascent on it (or on anything above it) never starts: the rendered input stays grey although the
unit is active on real data. Lucid's ``redirected_relu_grad`` fixes this: for an image whose
gradient through a ReLU layer is entirely zero, let through the components of the incoming
gradient that would *raise* the pre-activation, and keep blocking those that would push an
already negative input lower. Images that get any ordinary gradient keep the exact one.
Only the backward pass changes; the forward values are ordinary ReLU outputs.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch import nn


class RedirectedReLU(torch.autograd.Function):
    """``relu(x)`` forward; redirected gradient backward for images with none (see module doc)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return x.clamp_min(0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        negative = x < 0
        relu_grad = grad.masked_fill(negative, 0)
        b = x.shape[0] if x.ndim else 1
        reached = relu_grad.reshape(b, -1).ne(0).any(1)  # (B,) images with some ordinary gradient
        if bool(reached.all()):  # the usual case once the units are active: nothing to redirect
            return relu_grad
        # grad is d(loss)/d(out) of a minimised loss: grad > 0 would push x lower
        redirected = grad.masked_fill(negative & (grad > 0), 0)
        return torch.where(reached.reshape(b, *([1] * (x.ndim - 1))), relu_grad, redirected)


@contextmanager
def redirected_relu_gradients(model: nn.Module) -> Iterator[int]:
    """Inside the block, every (non-inplace) ``nn.ReLU`` of ``model`` backpropagates redirected
    gradients. Yields the number of ReLU modules affected.

    The replacement is a forward hook returning :class:`RedirectedReLU` of the module's input;
    enter this block *before* any :func:`~medlens.core.hooks.capture` on those modules, so the
    captured outputs are the redirected ones. Hooks are removed on exit, also on errors.
    In-place ReLUs (their input is overwritten) and functional ``F.relu`` calls are left alone.
    """

    def hook(_module, inputs, _output):
        return RedirectedReLU.apply(inputs[0])

    handles = []
    try:
        for m in model.modules():
            if type(m) is nn.ReLU and not m.inplace:
                handles.append(m.register_forward_hook(hook))
        yield len(handles)
    finally:
        for h in handles:
            h.remove()
