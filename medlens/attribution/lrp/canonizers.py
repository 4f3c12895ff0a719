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
* **gates**: a product of two input-dependent tensors where one is a gate (squeeze-and-excitation
  ``x * sigmoid(fc(pool(x)))`` in SE-ResNets and EfficientNets, a functional swish
  ``x * sigmoid(x)``, an attention RNN's ``weights * states``) hands the whole relevance to the
  signal and none to the gate, which counts as a constant (the signal-take-all rule of Arras et
  al. 2017 for LSTM gates, as attention probabilities are constants for transformers). The gate
  is the operand broadcast to the other's shape, or, of two same-shaped operands (a 1x1 feature
  map's gate), the one computed from the other, else the one a sigmoid, softmax or tanh produced; a plain gradient would give the gate the relevance ``x R``
  too, and relevance would grow without bound (1e12 times the logit on MONAI's SEResNet50);
* **global pooling written as a function** (``x.mean(dim=(2, 3))``, ``x.sum((2, 3))`` in a
  model's own forward rather than an ``nn.AdaptiveAvgPool2d``)
  hands each element its share ``x_i R / sum(x)``, as the ``norm`` rule does for pooling modules;
  a plain gradient gave every element ``R / N``, also those a ReLU had set to zero, whose share
  the ReLU's backward then dropped (a hand-written CNN lost 40% of the logit); so does a sum over
  every axis but the batch (a segmentation score's ``out.reshape(B, -1).sum(1)``, as in
  :class:`~medlens.core.targets.ReducedOutput`), where the gradient gave every element,
  also those outside the region, the whole score, and over a transformer's tokens
  (``tokens.sum(1)`` of ``(B, N, D)``);
* **scaling by a constant** (``x / 255``, ``x * 0.5``, a fixed per-channel scale: a number or a
  tensor that does not depend on the input) passes the relevance unchanged, as the z-rule of a
  one-input linear map does; a plain gradient scaled the relevance by the constant;
* **concatenations** (DenseNet, UNet skips) need nothing: the gradient of ``cat`` hands each
  part its own relevance;
* **attention computed inside a function** (``nn.MultiheadAttention``, so ``nn.TransformerEncoder``;
  ``F.scaled_dot_product_attention`` in a model's own forward) uses its probabilities as
  constants, as the ``constant`` rule does for attention modules (:func:`constant_attention`
  and the function mode), as does a hand-written one (``scores.softmax(-1) @ v``: a matrix
  product whose one operand a softmax made): the softmax's gradient would pass relevance to
  the queries and keys and not conserve it. The product of the probabilities and the values
  then gets the epsilon rule (:class:`_ConstantMap`: each value its contribution's share, the AH
  rule of Ali et al. 2022); the gradient ``P^T R`` gave a value relevance whatever its size;
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
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from medlens.attribution.lrp.rules import shares, stabilize
from medlens.attribution.transformer.attention_maps import explicit_attention, explicit_sdpa


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


class _GatedProduct(torch.autograd.Function):
    """``signal * gate`` whose backward hands the whole relevance to the signal, none to the gate."""

    @staticmethod
    def forward(ctx, signal: torch.Tensor, gate: torch.Tensor) -> torch.Tensor:
        ctx.gate_shape = gate.shape
        return signal * gate

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        return relevance, relevance.new_zeros(ctx.gate_shape)


class _ProportionalPool(torch.autograd.Function):
    """A sum or mean over axes ``dims`` whose backward hands each element its share
    ``x_i R / sum(x)`` of the relevance (the ``norm`` rule of average pooling modules)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, mean: bool, keepdim: bool, dims: tuple[int, ...], stabilizer: float
                ) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.stabilizer, ctx.dims = stabilizer, dims
        return x.mean(dims, keepdim=keepdim) if mean else x.sum(dims, keepdim=keepdim)

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        (x,) = ctx.saved_tensors
        total = x.sum(ctx.dims, keepdim=True)
        share = relevance.reshape(total.shape) / stabilize(total, ctx.stabilizer)
        return x * share, None, None, None, None


def global_pool(func: Any, args: tuple, kwargs: dict) -> tuple[bool, bool, tuple[int, ...]] | None:
    """``(mean, keepdim, dims)`` when ``func(*args, **kwargs)`` pools a ``(B, C, *spatial)`` tensor
    over all its spatial axes, ``(B, N, D)`` tokens over the tokens (a transformer's
    ``x.sum(1)``: a plain gradient gave every token the whole relevance, N times the logit in
    all), or any ``(B, ...)`` tensor over all its axes but the batch (a score summed over a
    segmentation's flattened output: the gradient gave every element the whole score), by a sum
    or a mean; else ``None``. (``F.adaptive_avg_pool2d`` is left alone: the pooling modules call
    it, and get the ``norm`` rule as modules.)"""
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor) or x.ndim < 2:
        return None
    if func not in _REDUCTIONS or set(kwargs) - {"dim", "keepdim"} or len(args) > 3:
        return None
    dim = args[1] if len(args) > 1 else kwargs.get("dim")
    keepdim = args[2] if len(args) > 2 else kwargs.get("keepdim", False)
    dims = dim if isinstance(dim, (tuple, list)) else [dim]
    if not all(isinstance(d, int) and not isinstance(d, bool) for d in dims):
        return None
    axes = {d % x.ndim for d in dims}
    if len(axes) != len(dims) or axes not in ({*range(2, x.ndim)}, {*range(1, x.ndim)}, {*range(1, x.ndim - 1)}):
        return None
    return func in (torch.mean, torch.Tensor.mean), bool(keepdim), tuple(sorted(axes))


class _ScaledThrough(torch.autograd.Function):
    """``x * c`` or ``x / c`` by a constant ``c`` whose backward passes the relevance unchanged
    (summed over the axes the constant broadcast ``x`` along)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, func: Any, args: tuple) -> torch.Tensor:
        ctx.shape = x.shape
        return func(*args)

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        extra = relevance.ndim - len(ctx.shape)
        if extra:
            relevance = relevance.sum(tuple(range(extra)))
        dims = tuple(i for i, (n, m) in enumerate(zip(ctx.shape, relevance.shape)) if n == 1 and m != 1)
        return (relevance.sum(dims, keepdim=True) if dims else relevance), None, None


class _PassedThrough(torch.autograd.Function):
    """An elementwise activation called as a function, whose backward passes the relevance
    unchanged (the ``pass`` rule activation modules get)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, call: Any) -> torch.Tensor:
        return call()

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        return relevance, None


class _EpsilonLinear(torch.autograd.Function):
    """``F.linear(x, w, b)`` whose backward is the epsilon rule: ``R_x = x * w^T (R / stab(z))``
    (``nn.MultiheadAttention``'s input and output projections, which it applies as functions,
    with no module to give a rule to)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, epsilon: float) -> torch.Tensor:
        z = F.linear(x, weight, bias)
        ctx.save_for_backward(x, weight, z)
        ctx.epsilon = epsilon
        return z

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        x, weight, z = ctx.saved_tensors
        return x * (shares(relevance, z, ctx.epsilon) @ weight), None, None, None


class _ConstantMap(torch.autograd.Function):
    """``call(x)``, a linear map of ``x`` whose other operands are constants (the values weighed
    by attention probabilities held constant, ``P @ v``), whose backward is the epsilon rule:
    ``R_x = x * J^T (R / stab(z))``, each entry of ``x`` its contribution's share (the gradient,
    ``P^T R``, gave a value relevance whatever its size, also a zero value: lost there)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, call: Any, epsilon: float) -> torch.Tensor:
        z = call(x)
        ctx.save_for_backward(x, z)
        ctx.call, ctx.epsilon = call, epsilon
        return z

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        x, z = ctx.saved_tensors
        s = shares(relevance, z.detach(), ctx.epsilon)
        with torch.enable_grad():
            xg = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(ctx.call(xg), xg, grad_outputs=s)
        return x * g, None, None


def constant_mix(epsilon: float):
    """``P @ v`` with ``P`` constant, the values' relevance by the epsilon rule (for
    :func:`~medlens.attribution.transformer.attention_maps.explicit_sdpa` and ``nn.MultiheadAttention``)."""

    def mix(probabilities: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
        constant = probabilities.detach()
        return _ConstantMap.apply(values, lambda v: constant @ v, epsilon)

    return mix


def _constant_product(func: Any, args: tuple, kwargs: dict, epsilon: float) -> torch.Tensor | None:
    """A matrix product or einsum of one input-dependent operand and constants (attention
    probabilities an attention module's ``constant`` rule detached, and the values) as a
    :class:`_ConstantMap`, or of two input-dependent ones of which one is a softmax's output
    (a hand-written attention's ``scores.softmax(-1) @ v``), that one held constant; ``None``
    for any other."""
    if kwargs:
        return None
    if func is torch.einsum:
        if not args or not isinstance(args[0], str):
            return None
        equation, operands = args[0], list(args[1][0:] if len(args) == 2 and isinstance(args[1], (list, tuple))
                                          else args[1:])

        def product(ops: list) -> torch.Tensor:
            return torch.einsum(equation, *ops)
    elif len(args) == 2:
        operands = list(args)

        def product(ops: list) -> torch.Tensor:
            return func(*ops)
    else:
        return None
    if len(operands) == 2 and all(_branch(t) for t in operands):
        made = [_softmax_output(t) for t in operands]  # a hand-written attention's probabilities
        if made.count(True) != 1:
            return None
        operands[made.index(True)] = operands[made.index(True)].detach()
    branches = [i for i, t in enumerate(operands) if _branch(t)]
    if len(branches) != 1 or not all(isinstance(t, torch.Tensor) and _constant(t)
                                     for i, t in enumerate(operands) if i != branches[0]):
        return None
    i = branches[0]
    return _ConstantMap.apply(operands[i], lambda x: product(operands[:i] + [x] + operands[i + 1:]), epsilon)


def _softmax_output(t: torch.Tensor) -> bool:
    """Whether a softmax made ``t`` (its autograd node says so)."""
    return t.grad_fn is not None and t.grad_fn.name().lstrip("_").startswith("SoftmaxBackward")


def _constant(t: Any) -> bool:
    """A number, or a tensor that does not depend on the input (no gradient reaches it)."""
    return isinstance(t, (int, float)) and not isinstance(t, bool) or (
        isinstance(t, torch.Tensor) and not t.requires_grad)


# ``x.mul_(c)`` and ``x.div_(c)`` are left alone: a rewrite returns a new tensor, and a bare in-place
# call whose result is not assigned would then change the forward (``x *= c`` rebinds ``x``: rewritten)
_DIVS = {torch.Tensor.div, torch.Tensor.__truediv__, torch.Tensor.__itruediv__, torch.div}
_REDUCTIONS = {torch.mean, torch.Tensor.mean, torch.sum, torch.Tensor.sum}
_ADDS = {torch.Tensor.add, torch.Tensor.__add__, torch.Tensor.__radd__, torch.Tensor.add_,
         torch.Tensor.__iadd__, torch.add}
_MULS = {torch.Tensor.mul, torch.Tensor.__mul__, torch.Tensor.__rmul__, torch.Tensor.__imul__, torch.mul}
#: Matrix products: rewritten where one operand depends on the input and the others are
#: constants (the values weighed by detached attention probabilities).
_MATMULS = {torch.matmul, torch.Tensor.matmul, torch.Tensor.__matmul__, torch.bmm, torch.Tensor.bmm, torch.einsum}
#: Elementwise activations called as functions (``nn.TransformerEncoderLayer``'s ``F.gelu``, a
#: hand-written MLP's); their gradient would scale the relevance (GELU's by up to 1.13, and give
#: none where it is 0). ReLU's is left: it only zeroes relevance where the output, and so the
#: next rule's share, is zero already. Sigmoid and tanh are left too: as gates they are found by
#: their autograd nodes.
_ACTIVATIONS = {F.gelu, F.silu, F.mish, F.elu, F.selu, F.celu, F.leaky_relu, F.softplus, F.hardswish, F.relu6,
                F.hardtanh}
#: The operations :class:`_ResidualAdditions` may rewrite; every other one runs as it is at once.
_REWRITTEN = _ADDS | _MULS | _DIVS | _REDUCTIONS | _ACTIVATIONS | _MATMULS
#: Autograd nodes whose output is a gate, in a product of two same-shaped tensors.
_GATE_NODES = ("SigmoidBackward", "SoftmaxBackward", "TanhBackward", "HardsigmoidBackward")


def _branch(t: Any) -> bool:
    """A differentiable, input-dependent tensor (not a parameter): one side of a branch op."""
    return (isinstance(t, torch.Tensor) and t.is_floating_point() and t.requires_grad
            and not isinstance(t, nn.Parameter))


def gate_of(a: torch.Tensor, b: torch.Tensor) -> int | None:
    """Which operand of ``a * b`` is the gate (0 or 1), or ``None`` when neither is: the operand
    broadcast to the other's shape, or, of same-shaped operands (a 1x1 feature map's gate), the one
    computed from the other (a squeeze-and-excitation gate from its feature map, ``sigmoid(x)`` from
    ``x``), else the one a sigmoid, softmax or tanh produced (and not both)."""
    if a.shape != b.shape:
        shape = torch.broadcast_shapes(a.shape, b.shape)
        if a.shape == shape and b.numel() < a.numel():
            return 1
        if b.shape == shape and a.numel() < b.numel():
            return 0
        return None
    made = [_computed_from(a, b), _computed_from(b, a)]  # the gate is computed from the signal
    if made.count(True) == 1:
        return made.index(True)
    gates = [t.grad_fn is not None and t.grad_fn.name().startswith(_GATE_NODES) for t in (a, b)]
    return gates.index(True) if gates.count(True) == 1 else None


#: How many autograd nodes :func:`_computed_from` visits: a gate's own path (pooling, two linear
#: layers, an activation, a reshape) is a few nodes; the signal's history is not searched through.
_GATE_PATH_NODES = 64


def _computed_from(t: torch.Tensor, other: torch.Tensor) -> bool:
    """Whether ``t`` was computed from ``other`` within :data:`_GATE_PATH_NODES` autograd nodes (a
    squeeze-and-excitation gate from its feature map, ``sigmoid(x)`` from ``x``), ``other`` itself
    not being ``t``'s node."""
    target, start = other.grad_fn, t.grad_fn
    if target is None or start is None or start is target:
        return False
    stack, seen = [start], set()
    while stack and len(seen) < _GATE_PATH_NODES:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for parent, _ in node.next_functions:
            if parent is target:
                return True
            if parent is not None:
                stack.append(parent)
    return False


class _ResidualAdditions(TorchFunctionMode):
    """Rewrites additions of two same-shaped, input-dependent tensors while ``active``."""

    def __init__(self, stabilizer: float) -> None:
        super().__init__()
        self.active = False
        self.stabilizer = stabilizer
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is F.scaled_dot_product_attention and self.active and torch.is_grad_enabled():
            self.count += 1
            return explicit_sdpa(held_constant, *args, **kwargs, mix=constant_mix(self.stabilizer))
        if self.active and func in _REWRITTEN and args and torch.is_grad_enabled():
            rewritten = self._rewrite(func, args, kwargs)
            if rewritten is not None:
                self.count += 1
                return rewritten
        return func(*args, **kwargs)

    def _rewrite(self, func, args: tuple, kwargs: dict) -> torch.Tensor | None:
        """The operation as LRP must see it (the module's notes), or ``None`` to run it as it is."""
        if func in _MATMULS:
            return _constant_product(func, args, kwargs, self.stabilizer)
        if func in _REDUCTIONS:
            pooled = global_pool(func, args, kwargs) if _branch(args[0]) else None
            return None if pooled is None else _ProportionalPool.apply(args[0], *pooled, self.stabilizer)
        if func in _ACTIVATIONS:
            in_place = kwargs.get("inplace") is True or any(a is True for a in args[1:])
            if not _branch(args[0]) or in_place:
                return None
            return _PassedThrough.apply(args[0], lambda: func(*args, **kwargs))
        if len(args) != 2 or kwargs:
            return None
        a, b = args
        if func in _ADDS:
            same = _branch(a) and _branch(b) and a.shape == b.shape
            return _ProportionalSum.apply(a, b, self.stabilizer) if same else None
        if _branch(a) and _constant(b):  # a product or a quotient from here on
            return _ScaledThrough.apply(a, func, args)
        if func in _DIVS:  # c / x is not linear in x
            return None
        if _constant(a) and _branch(b):
            return _ScaledThrough.apply(b, func, args)
        gate = gate_of(a, b) if _branch(a) and _branch(b) else None
        if gate is None:
            return None
        return _GatedProduct.apply(b, a) if gate == 0 else _GatedProduct.apply(a, b)


def held_constant(probabilities: torch.Tensor) -> torch.Tensor:
    """Attention probabilities as LRP treats them: constants (no relevance to the scores; the
    values' by the epsilon rule, :func:`constant_mix`, as for MONAI's and medlens's attention)."""
    return probabilities.detach()


@contextmanager
def constant_attention(model: nn.Module, epsilon: float) -> Iterator[None]:
    """While the block runs, ``model``'s ``nn.MultiheadAttention`` layers use their
    probabilities as constants and give their projections and the values' product the epsilon rule (they compute both
    inside, with no module to give a rule to; their gradients do not conserve relevance)."""

    def linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        return _EpsilonLinear.apply(x, weight, bias, epsilon)

    with explicit_attention(model, held_constant, linear, constant_mix(epsilon)):
        yield


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
    adds or multiplies two tensors that both depend on the inputs (an ``AddBackward0`` or
    ``MulBackward0`` node with two differentiable operands that are not parameters: a residual
    sum or a gate); ``True`` for an output it cannot read."""
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
        if (node.name() in ("AddBackward0", "MulBackward0")
                and sum(f.name() != "torch::autograd::AccumulateGrad" for f in parents) >= 2):
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
