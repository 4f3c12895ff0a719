"""Canonizers: make a model's structure one whose layers LRP rules can see.

LRP rules attach to modules, so every operation that mixes relevance must be a module or be
made visible:

* **batch norm** is folded into the convolution or linear layer that feeds it (done by
  :mod:`~medlens.attribution.lrp.core` from the data flow, without touching parameters);
* **residual additions** (ResNet blocks, MONAI's ``ResNetBlock``/``ResNetBottleneck`` and
  ``ResidualUnit``, UNet-style ``a + b`` skips) must split the relevance of ``a + b`` between
  ``a`` and ``b`` in proportion to their contributions (``R_a = a R / (a + b)``); a plain
  gradient would give both the whole relevance. Write the addition with the :class:`Sum` module,
  or rely on :func:`residual_sums`, which, while the model's forward runs, replaces every
  addition of two same-shaped tensors that both depend on the input (``a + b``, ``a += b``,
  ``torch.add(a, b)``) by that proportional split. A bare in-place ``a.add_(b)`` whose result is
  not assigned cannot be rewritten: write ``a = a + b`` (or ``a += b``) or use :class:`Sum`.
  A parameter added to a branch (a transformer's position embedding, ``tokens + pos``) is not
  a branch: the tokens keep the relevance (otherwise a batch of one, where the shapes agree,
  would be explained differently from a larger batch);
* **concatenations** (DenseNet, UNet skips) need nothing: the gradient of ``cat`` hands each
  part its own relevance;
* **in-place activations** (``ReLU(inplace=True)``, MONAI's default) are made out-of-place for
  the duration (:func:`without_inplace`), so the rule's output is never overwritten and the
  activation's relevance is passed unchanged (an in-place activation's own backward stays in
  the graph whatever its hook returns: LeakyReLU's would scale the negative side's relevance
  by its slope). In-place ReLUs stay in place where no rule reuses a convolution's output: their
  backward only zeroes relevance where the output is zero, where the next layer's rule
  (``a_j`` times its share) has already put none.

Each canonizer is a context manager that undoes its change on exit, also on error.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from typing import Any, Iterator

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from medlens.attribution.lrp.rules import stabilize


class Sum(nn.Module):
    """``Sum()(a, b, ...) = a + b + ...``: an addition of branches that LRP can hook.

    Outside LRP it is a plain sum; inside, each operand gets relevance in proportion to its
    contribution (the ``norm`` rule).
    """

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        out = tensors[0]
        for t in tensors[1:]:
            out = out + t
        return out


class _ProportionalSum(torch.autograd.Function):
    """``a + b`` whose backward splits the relevance ``R`` as ``a R / z, b R / z``."""

    @staticmethod
    def forward(ctx, a: torch.Tensor, b: torch.Tensor, stabilizer: float) -> torch.Tensor:
        ctx.save_for_backward(a, b)
        ctx.stabilizer = stabilizer
        return a + b

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        a, b = ctx.saved_tensors
        share = relevance / stabilize(a + b, ctx.stabilizer)
        return a * share, b * share, None


_ADDS = {torch.Tensor.add, torch.Tensor.__add__, torch.Tensor.__radd__, torch.Tensor.add_,
         torch.Tensor.__iadd__, torch.add}


class _ResidualAdditions(TorchFunctionMode):
    """Rewrites additions of two same-shaped, input-dependent tensors while ``active``."""

    def __init__(self, stabilizer: float) -> None:
        super().__init__()
        self.active = False
        self.stabilizer = stabilizer
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.active and func in _ADDS and len(args) == 2 and not kwargs:
            a, b = args
            if (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.shape == b.shape
                    and a.is_floating_point() and a.requires_grad and b.requires_grad and torch.is_grad_enabled()
                    and not isinstance(a, nn.Parameter) and not isinstance(b, nn.Parameter)):
                self.count += 1
                return _ProportionalSum.apply(a, b, self.stabilizer)
        return func(*args, **kwargs)


#: Per model (weakly), the input shapes ``(shape[1:], dtype, device)`` for which its forward,
#: run under the function mode, added no two branches: later forwards of that shape run without
#: the mode (a Python dispatch on every operation of the forward; DenseNet's branches are
#: concatenated, never added), each checked on its autograd graph.
_WITHOUT_ADDITIONS: weakref.WeakKeyDictionary[nn.Module, set] = weakref.WeakKeyDictionary()


class AdditionsAppeared(Exception):
    """A forward run without the function mode added two branches after all (control flow that
    depends on the input's values): nothing of it may be used; run it again, with the mode."""


def _input_key(args: tuple) -> tuple | None:
    x = args[0] if args else None
    return (tuple(x.shape[1:]), x.dtype, x.device) if isinstance(x, torch.Tensor) else None


def branch_additions(output: Any) -> bool:
    """Whether the autograd graph behind ``output`` (a tensor, or a tuple, list or dict of them)
    adds two tensors that both depend on the inputs (an ``AddBackward0`` node with two
    differentiable operands that are not parameters); ``True`` for an output it cannot read."""
    if isinstance(output, dict):
        output = list(output.values())
    tensors = list(output) if isinstance(output, (tuple, list)) else [output]
    if not all(isinstance(t, torch.Tensor) for t in tensors):
        return True
    stack = [t.grad_fn for t in tensors if t.grad_fn is not None]
    seen = set()
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        parents = [f for f, _ in node.next_functions if f is not None]
        if node.name() == "AddBackward0" and sum(f.name() != "torch::autograd::AccumulateGrad" for f in parents) >= 2:
            return True
        stack.extend(parents)
    return False


@contextmanager
def residual_sums(model: nn.Module, stabilizer: float = 1e-6) -> Iterator[_ResidualAdditions]:
    """While ``model``'s forward runs inside the block, additions of branches split relevance
    in proportion to their contributions (see the module's notes).

    The function mode is pushed when the model's forward starts and popped when it ends, so
    the rest of the block (the backward pass, the rules' own arithmetic) pays no Python
    dispatch per operation. A model whose forward made no such addition for inputs of this
    shape runs without the mode; if its autograd graph then shows one after all, the forward
    raises :class:`AdditionsAppeared` (and the shape is forgotten), for the caller to run again.
    """
    mode = _ResidualAdditions(stabilizer)
    depth = [0]  # forward calls of the model now running (a model may call itself)
    run = {"key": None, "without": False}

    def start(_module, args):
        if depth[0] == 0:
            key = _input_key(args)
            run.update(key=key, without=key is not None and key in _WITHOUT_ADDITIONS.get(model, ()))
            if not run["without"]:
                mode.count = 0
                mode.__enter__()
                mode.active = True
        depth[0] += 1

    def stop(_module, _args, output=None):
        depth[0] -= 1
        if depth[0] != 0:
            return
        if run["without"]:
            if torch.is_grad_enabled() and branch_additions(output):
                _WITHOUT_ADDITIONS[model].discard(run["key"])
                raise AdditionsAppeared("the forward added two branches")
            return
        mode.active = False
        mode.__exit__(None, None, None)
        # remembered only if the graph shows no addition the mode left alone either (broadcast
        # shapes): else each later forward would find one, and run twice
        if mode.count == 0 and run["key"] is not None and torch.is_grad_enabled() and not branch_additions(output):
            _WITHOUT_ADDITIONS.setdefault(model, set()).add(run["key"])

    handles = [model.register_forward_pre_hook(start), model.register_forward_hook(stop, always_call=True)]
    try:
        yield mode
    finally:
        for h in handles:
            h.remove()
        while depth[0] > 0:  # a forward hook that never ran (cannot happen with always_call)
            depth[0] = 1
            run["without"] = False
            stop(None, None)


@contextmanager
def without_inplace(model: nn.Module, keep: tuple[type, ...] = ()) -> Iterator[None]:
    """Set ``inplace=False`` on every module that has ``inplace=True`` (except modules of the
    types in ``keep``); restored on exit."""
    changed = [m for m in model.modules() if getattr(m, "inplace", None) is True and not isinstance(m, keep)]
    try:
        for m in changed:
            m.inplace = False
        yield
    finally:
        for m in changed:
            m.inplace = True
