"""LRP rules: how the relevance at a layer's output is passed to its input.

Each rule is the modified gradient of Bach et al., "On Pixel-Wise Explanations for Non-Linear
Classifier Decisions by Layer-Wise Relevance Propagation" (PLoS ONE 2015), in the notation of
Montavon et al., "Layer-Wise Relevance Propagation: An Overview" (2019): for a linear layer
``z_k = sum_j w_jk a_j + b_k`` the relevance of input ``j`` is

    R_j = sum_k  c_jk / stab(sum_j' c_j'k)  R_k

with the contributions ``c`` of the rule (``a_j w_jk`` for epsilon, the positive part for z+,
...). One pass computes it for every ``j`` at once as ``a * J^T (R / stab(z))`` where ``J^T``
is the backward pass of the layer evaluated with modified inputs and parameters (a transposed
convolution for a convolution). The rules' definitions (and stabiliser: ``z + eps sign(z)``,
``sign(0) = 1``) are those of Zennit (Anders et al. 2021), against which they are tested.

A rule is called in the backward pass with the layer, its inputs, the relevance at its output
and the layer's effective parameters (a batch norm that follows the layer folded in).
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Callable, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

class Params:
    """A layer's effective weight and bias (a folded batch norm included) and what the rules
    derive from them (positive parts, stacked blocks), each made once while the parameters stay
    unchanged: a pass, or every chunk of one explanation, pays for it once."""

    __slots__ = ("weight", "bias", "_made", "_transient")

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.weight, self.bias, self._made, self._transient = weight, bias, {}, set()

    def __iter__(self):  # ``w, b = params``
        return iter((self.weight, self.bias))

    def made(self, key: object, make: Callable[[], object], *, transient: bool = False):
        """``make()``, made once per ``key``; ``transient``: it depends on the input's shape
        (an activation-sized tensor), kept only until :meth:`forget_transient` (the end of
        the explanation), while the parameters' derivations stay for the next one."""
        if key not in self._made:
            self._made[key] = make()
            if transient:
                self._transient.add(key)
        return self._made[key]

    def forget_transient(self) -> None:
        for key in self._transient:
            self._made.pop(key, None)
        self._transient.clear()

    def pos(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.made("pos", lambda: (self.weight.clamp(min=0), _pos(self.bias)))

    def neg(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        return self.made("neg", lambda: (self.weight.clamp(max=0), _neg(self.bias)))


def as_params(params) -> Params:
    return params if isinstance(params, Params) else Params(*params)


def stabilize(z: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``z + epsilon * sign(z)`` with ``sign(0) = +1``: a denominator that is never zero (a new tensor).

    ``sign(sign(z) + 1/2)`` is that sign (``-1`` below zero, ``+1`` from zero up, ``-0.0``
    included) in vectorised passes; ``torch.where(z >= 0, 1, -1)`` took about 30 times as long
    on a CPU (a boolean mask, then a select), more than the layer's convolution.
    """
    return z.sign().add_(0.5).sign_().mul_(epsilon).add_(z)


def shares(relevance: torch.Tensor, z: torch.Tensor, epsilon: float, sign: int = 0, *, fresh: bool = False,
           out: torch.Tensor | None = None) -> torch.Tensor:
    """``relevance / stab(z)``: the relevance per unit of each output.

    ``sign``: the sign ``z`` is known to have (``+1``: a sum of non-negative contributions, so
    ``stab(z) = z + epsilon``; ``-1``: of non-positive ones), ``0``: unknown. ``fresh``: ``z``
    is this function's to overwrite (the result is written into it, or into ``out``).
    """
    if not fresh:
        den = stabilize(z, epsilon)
    elif sign == 0:
        den = z.add_(z.sign().add_(0.5).sign_().mul_(epsilon))
    else:
        den = z.add_(epsilon if sign > 0 else -epsilon)
    return torch.div(relevance, den, out=den if out is None else out)


def nonnegative(x: torch.Tensor) -> bool:
    """Whether every entry is ``>= 0`` (after a ReLU): one reduction, no boolean tensor."""
    return x.numel() == 0 or bool(x.min() >= 0)


_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


def apply_linear(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The affine map of ``layer`` (a linear, convolution or transposed convolution layer) with
    other parameters. A transposed convolution uses its own ``output_padding`` (an
    ``output_size`` given to its forward call is not seen here)."""
    if isinstance(layer, nn.Linear):
        return F.linear(x, weight, bias)
    if getattr(layer, "transposed", False):
        return _CONV_TRANSPOSE[x.ndim - 2](x, weight, bias, layer.stride, layer.padding, layer.output_padding,
                                           layer.groups, layer.dilation)
    return layer._conv_forward(x, weight, bias)  # convolutions of every rank, any padding mode


def _pos(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clamp(min=0)


def _neg(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clamp(max=0)


def transpose(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``J^T s``: the gradient of ``<layer(x; weight), s>`` with respect to ``x`` (independent of
    ``x``'s values: the layer is affine in it); a new tensor.

    Computed directly - a matrix product for a linear layer, the input gradient of the
    convolution (``aten.convolution_backward``) for a zero-padded convolution - so that no
    forward pass is recomputed just to be differentiated; other layers go through autograd.
    """
    if isinstance(layer, nn.Linear):
        return s @ weight
    if isinstance(layer, nn.modules.conv._ConvNd) and not layer.transposed and layer.padding_mode == "zeros" \
            and not isinstance(layer.padding, str):
        return torch.ops.aten.convolution_backward(
            s, x, weight, None, list(layer.stride), list(layer.padding), list(layer.dilation), False,
            [0] * len(layer.stride), layer.groups, [True, False, False],
        )[0]
    with torch.enable_grad():
        xg = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(apply_linear(layer, xg, weight, None), xg, grad_outputs=s)
    return g


def _axis(layer: nn.Module) -> int:
    """The channel axis of the layer's inputs and outputs."""
    return -1 if isinstance(layer, nn.Linear) else 1


class Blocks:
    """A rule's modified layer as a block matrix: outputs ``z_o = sum_i layer(x_i; W_oi) + b_o``
    of input parts ``x_i`` (``x`` itself, or its positive and negative parts, or bounds).

    For a layer with one group the blocks are one layer call over the parts stacked along the
    channels and the weights stacked along both channel axes: the same sums as one call per
    block, with the input read (and, for convolutions, unfolded) once, and one transposed call
    that returns every part's ``sum_o J(W_oi)^T s_o``. Grouped convolutions (stacking would mix
    the groups) and transposed convolutions (their weights hold the input channels first) make
    one call per block.
    """

    def __init__(self, layer: nn.Module, weights: Sequence[Sequence[torch.Tensor]],
                 biases: Sequence[torch.Tensor | None], stacked: torch.Tensor | None = None) -> None:
        # weakly: blocks are kept with the layer's parameters (core._KEPT, weakly keyed by the
        # layer), and a strong reference would keep the layer, and its model, alive for ever
        self._layer = weakref.ref(layer)
        self.weights, self.biases = weights, biases
        self.axis = _axis(layer)
        self.grouped = getattr(layer, "groups", 1) != 1 or getattr(layer, "transposed", False)
        if not self.grouped:
            rows = [w[0] if len(w) == 1 else torch.cat(list(w), dim=1) for w in weights] if stacked is None else []
            self.weight = stacked if stacked is not None else rows[0] if len(rows) == 1 else torch.cat(rows, dim=0)
            self.bias = None
            if any(b is not None for b in biases):
                self.bias = torch.cat([b if b is not None else torch.zeros(w[0].shape[0], dtype=w[0].dtype,
                                                                           device=w[0].device)
                                       for b, w in zip(biases, weights)])

    @property
    def layer(self) -> nn.Module:
        return self._layer()

    def forward(self, parts: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """``z_o`` for each block (views of one tensor when the layer has one group)."""
        if self.grouped:
            return [sum(apply_linear(self.layer, x, w, None) for x, w in zip(parts, ws)) + (0 if b is None else
                    _bias_view(b, self.layer, parts[0])) for ws, b in zip(self.weights, self.biases)]
        z = apply_linear(self.layer, _cat(parts, self.axis), self.weight, self.bias)
        return list(z.chunk(len(self.weights), dim=self.axis)) if len(self.weights) > 1 else [z]

    def relevance(self, parts: Sequence[torch.Tensor], s: Sequence[torch.Tensor] | torch.Tensor) -> torch.Tensor:
        """``sum_i x_i * sum_o J(W_oi)^T s_o``; ``s``: one tensor per output, or all of them
        stacked along the channels (as :func:`pair` makes them)."""
        if self.grouped:
            if isinstance(s, torch.Tensor):
                s = s.chunk(len(self.weights), dim=self.axis)
            out = 0
            for i, x in enumerate(parts):
                g = sum(transpose(self.layer, x, ws[i], so) for ws, so in zip(self.weights, s))
                out = out + x * g
            return out
        stacked = _cat(parts, self.axis)
        g = transpose(self.layer, stacked, self.weight, s if isinstance(s, torch.Tensor) else _cat(s, self.axis))
        g.mul_(stacked)
        if len(parts) == 1:
            return g
        chunks = g.chunk(len(parts), dim=self.axis)
        out = chunks[0].clone()
        for gi in chunks[1:]:
            out.add_(gi)
        return out


def pair(like: torch.Tensor, axis: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """An empty tensor with twice the channels of ``like`` and its two halves: two outputs'
    shares written in place, ready for one transposed call (no concatenation)."""
    shape = list(like.shape)
    shape[axis] *= 2
    stacked = like.new_empty(shape)
    first, second = stacked.chunk(2, dim=axis)
    return stacked, first, second


def _cat(ts: Sequence[torch.Tensor], axis: int) -> torch.Tensor:
    return ts[0] if len(ts) == 1 else torch.cat(list(ts), dim=axis)


def _bias_view(b: torch.Tensor, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return b if isinstance(layer, nn.Linear) else b.view(-1, *([1] * (x.ndim - 2)))


class Rule:
    """A rule for layers with a weight (linear layers, convolutions).

    ``relevance(layer, inputs, relevance, params, output)`` returns one relevance tensor per
    input; ``params`` is a :class:`Params` (or a ``(weight, bias)`` pair); ``output`` is the
    layer's output of the forward pass (after a folded batch norm) for rules that set
    ``uses_output``, else ``None``.
    """

    name = "rule"
    needs_params = True
    uses_output = False
    #: whether ``relevance`` takes ``nonneg=True`` (the input is known to be ``>= 0``, e.g. a
    #: ReLU's output, so the rule needs no reduction to find its sign)
    sign_aware = False

    def relevance(
        self, layer: nn.Module, inputs: Tuple[torch.Tensor, ...], relevance: torch.Tensor, params,
        output: torch.Tensor | None = None,
    ) -> Tuple[torch.Tensor, ...]:
        raise NotImplementedError

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({fields})"


@dataclass(repr=False)
class Epsilon(Rule):
    """LRP-epsilon: ``R_j = a_j w_jk / (z_k + eps sign z_k) R_k``; ``epsilon -> 0`` is LRP-0."""

    epsilon: float = 1e-6
    name = "epsilon"
    uses_output = True  # z is the layer's own output: no forward pass is recomputed

    def relevance(self, layer, inputs, relevance, params, output=None):
        (x,) = inputs
        w, b = params
        z = apply_linear(layer, x, w, b) if output is None else output
        return (transpose(layer, x, w, shares(relevance, z, self.epsilon)).mul_(x),)


def _signed(x: torch.Tensor, nonneg: bool = False) -> tuple[list[torch.Tensor], bool]:
    """The input parts a sign-aware rule works on: ``[x]`` after a ReLU, else ``[x+, x-]``;
    ``nonneg``: the caller knows ``x >= 0`` (no reduction to check it)."""
    if nonneg or nonnegative(x):
        return [x], True
    return [x.clamp(min=0), x.clamp(max=0)], False


def _positive_blocks(layer: nn.Module, p: Params, nonneg: bool) -> Blocks:
    """The positive contributions ``z+ = layer(x+; w+, b+) + layer(x-; w-)`` (a sum of
    non-negative terms), the forward every sign-aware rule needs."""
    return p.made(("plus", nonneg), lambda: Blocks(
        layer, [[p.pos()[0]] if nonneg else [p.pos()[0], p.neg()[0]]], [p.pos()[1]]))


def _pair_blocks(layer: nn.Module, p: Params, nonneg: bool, key: object, fill, biases) -> Blocks:
    """Two outputs over the parts ``[x]`` or ``[x+, x-]``: weights ``W1`` then ``W2`` for ``x+``
    (with ``x-`` the other way round), for the rules' transposed call.

    ``fill(W1, W2)`` writes the two weights into the halves of one stacked tensor (no copies
    of the, in 3D networks large, weights beyond that tensor); ``biases()`` gives ``b1, b2``.
    """
    def make() -> Blocks:
        w = p.weight
        stacked = torch.empty((2 * w.shape[0], *w.shape[1:]), dtype=w.dtype, device=w.device)
        w1, w2 = stacked.chunk(2, dim=0)
        fill(w1, w2)
        b1, b2 = biases()
        if nonneg:
            return Blocks(layer, [[w1], [w2]], [b1, b2], stacked)
        return Blocks(layer, [[w1, w2], [w2, w1]], [b1, b2])
    return p.made((key, nonneg), make)


def _output(layer: nn.Module, x: torch.Tensor, p: Params, output: torch.Tensor | None) -> torch.Tensor:
    return apply_linear(layer, x, p.weight, p.bias) if output is None else output


@dataclass(repr=False)
class ZPlus(Rule):
    """LRP-z+: only positive contributions ``(a_j w_jk)^+`` (inputs of either sign, as in Zennit):
    ``x+`` with ``w+`` and ``x-`` with ``w-``, so the denominator is a sum of non-negative terms.
    After a ReLU that is one modified forward and one transposed layer call."""

    stabilizer: float = 1e-6
    name = "zplus"
    sign_aware = True

    def relevance(self, layer, inputs, relevance, params, output=None, nonneg=False):
        (x,) = inputs
        p = as_params(params)
        parts, nonneg = _signed(x, nonneg)
        blocks = _positive_blocks(layer, p, nonneg)
        (z,) = blocks.forward(parts)
        return (blocks.relevance(parts, [shares(relevance, z, self.stabilizer, +1, fresh=True)]),)


@dataclass(repr=False)
class AlphaBeta(Rule):
    """LRP-alpha-beta: ``alpha`` times the positive minus ``beta`` times the negative contributions,
    each normalised by its own sum (``alpha - beta = 1``).

    The sum of the negative contributions is the layer's output minus that of the positive ones
    (``z- = z - z+``, clamped at zero where rounding would cross it), so one modified forward
    serves both terms; the two transposed calls are one over the stacked weights.
    """

    alpha: float = 2.0
    beta: float = 1.0
    stabilizer: float = 1e-6
    name = "alpha_beta"
    uses_output = True
    sign_aware = True

    def __post_init__(self) -> None:
        if self.alpha < 0 or self.beta < 0 or abs(self.alpha - self.beta - 1) > 1e-12:
            raise ValueError(f"alpha-beta needs alpha, beta >= 0 and alpha - beta = 1, got {self.alpha}, {self.beta}")

    def relevance(self, layer, inputs, relevance, params, output=None, nonneg=False):
        (x,) = inputs
        p = as_params(params)
        parts, nonneg = _signed(x, nonneg)
        (zp,) = _positive_blocks(layer, p, nonneg).forward(parts)
        stacked, sp, sn = pair(zp, _axis(layer))
        torch.sub(_output(layer, x, p, output), zp, out=sn).clamp_(max=0)  # z-
        shares(relevance, zp, self.stabilizer, +1, fresh=True, out=sp).mul_(self.alpha)
        shares(relevance, sn, self.stabilizer, -1, fresh=True).mul_(-self.beta)
        blocks = _pair_blocks(layer, p, nonneg, "alpha-beta",
                              lambda w1, w2: (torch.clamp(p.weight, min=0, out=w1), torch.clamp(p.weight, max=0, out=w2)),
                              lambda: (p.pos()[1], p.neg()[1]))
        return (blocks.relevance(parts, stacked),)


@dataclass(repr=False)
class Gamma(Rule):
    """LRP-gamma (generalised to inputs of either sign): contributions of the output's sign are
    favoured by ``gamma`` (``w + gamma w^+`` for positive outputs, ``w + gamma w^-`` for negative).

    Both modified outputs follow from the layer's output ``z`` and the positive contributions
    ``z+`` (one modified forward): ``z + gamma z+`` and ``(1 + gamma) z - gamma z+``.
    """

    gamma: float = 0.25
    stabilizer: float = 1e-6
    name = "gamma"
    uses_output = True
    sign_aware = True

    def relevance(self, layer, inputs, relevance, params, output=None, nonneg=False):
        (x,) = inputs
        p = as_params(params)
        g = self.gamma
        parts, nonneg = _signed(x, nonneg)
        z = _output(layer, x, p, output)
        (plus,) = _positive_blocks(layer, p, nonneg).forward(parts)
        plus.mul_(g)
        stacked, s1, s2 = pair(z, _axis(layer))
        torch.add(z, plus, out=s1)
        torch.mul(z, 1 + g, out=s2).sub_(plus)
        sign = z.sign()
        shares(relevance, s1, self.stabilizer, fresh=True).mul_(sign.clamp(min=0))  # where z > 0
        shares(relevance, s2, self.stabilizer, fresh=True).mul_(sign.clamp_(max=0).neg_())  # where z < 0

        def fill(w1: torch.Tensor, w2: torch.Tensor) -> None:  # w + gamma w^+ and w + gamma w^-
            wp = p.pos()[0]
            torch.add(p.weight, wp, alpha=g, out=w1)
            torch.mul(p.weight, 1 + g, out=w2).sub_(wp, alpha=g)

        def biases():
            b = p.bias
            return (None, None) if b is None else (b + g * p.pos()[1], b + g * p.neg()[1])

        blocks = _pair_blocks(layer, p, nonneg, ("gamma", g), fill, biases)
        return (blocks.relevance(parts, stacked),)


def _input_independent(layer: nn.Module, x: torch.Tensor, p: Params, key: str, weight, bias, relevance: torch.Tensor,
                       stabilizer: float) -> torch.Tensor:
    """``J(W)^T (R / stab(layer(1; W, B)))`` for rules whose contributions ignore the input
    (flat, w^2): the denominator depends only on the input's shape, so it is made once."""
    w, b = p.made((key, "params"), lambda: (weight(), bias()))
    z = p.made((key, tuple(x.shape), x.dtype, x.device),
               lambda: apply_linear(layer, torch.ones_like(x), w, b).add_(stabilizer), transient=True)  # z >= 0
    return transpose(layer, x, w, torch.div(relevance, z))  # J^T does not read x's values


@dataclass(repr=False)
class Flat(Rule):
    """LRP-flat: relevance spread uniformly over each output's receptive field (weights set to 1)."""

    stabilizer: float = 1e-6
    name = "flat"

    def relevance(self, layer, inputs, relevance, params, output=None):
        (x,) = inputs
        p = as_params(params)
        return (_input_independent(layer, x, p, "flat", lambda: torch.ones_like(p.weight), lambda: None,
                                   relevance, self.stabilizer),)


@dataclass(repr=False)
class WSquare(Rule):
    """LRP-w^2: relevance in proportion to the squared weights (input-independent)."""

    stabilizer: float = 1e-6
    name = "wsquare"

    def relevance(self, layer, inputs, relevance, params, output=None):
        (x,) = inputs
        p = as_params(params)
        return (_input_independent(layer, x, p, "wsquare", lambda: p.weight * p.weight,
                                   lambda: None if p.bias is None else p.bias * p.bias, relevance, self.stabilizer),)


Bound = "float | torch.Tensor | None"


@dataclass(repr=False)
class ZBox(Rule):
    """LRP-z^B for bounded inputs ``low <= x <= high`` (Montavon et al. 2017).

    ``low``/``high``: numbers or tensors broadcastable to one input ``(C, *spatial)``; ``None``
    takes each sample's own minimum / maximum.
    """

    low: object = None
    high: object = None
    stabilizer: float = 1e-6
    name = "zbox"

    def _bound(self, value, x: torch.Tensor, reduce: Callable) -> torch.Tensor:
        if value is None:
            dims = tuple(range(1, x.ndim))
            return reduce(x, dim=dims, keepdim=True).expand_as(x)
        return torch.as_tensor(value, dtype=x.dtype, device=x.device).expand_as(x)

    def relevance(self, layer, inputs, relevance, params, output=None):
        (x,) = inputs
        p = as_params(params)
        lo, hi = self._bound(self.low, x, torch.amin), self._bound(self.high, x, torch.amax)
        # the three terms as one layer call over [x, -low, -high] stacked along the channels

        def make() -> Blocks:
            w, b = p
            bias = None if b is None else b - p.pos()[1] - p.neg()[1]
            return Blocks(layer, [[w, p.pos()[0], p.neg()[0]]], [bias])

        blocks = p.made("zbox", make)
        parts = [x, -lo, -hi]
        (z,) = blocks.forward(parts)
        return (blocks.relevance(parts, [shares(relevance, z, self.stabilizer, fresh=True)]),)


@dataclass(repr=False)
class Norm(Rule):
    """For parameter-free linear maps (average pooling, sums of branches): each input receives
    relevance in proportion to its contribution, ``R_j = a_j dz_k/da_j / stab(z_k) R_k``."""

    stabilizer: float = 1e-6
    name = "norm"
    needs_params = False
    uses_output = True  # average pooling's transpose needs no forward pass: z is the layer's own output

    def relevance(self, layer, inputs, relevance, params, output=None):
        if output is not None and len(inputs) == 1:
            g = pooling_transpose(layer, inputs[0], shares(relevance, output, self.stabilizer))
            if g is not None:
                return (g.mul_(inputs[0]),)
        with torch.enable_grad():
            xs = [x.detach().requires_grad_(True) for x in inputs]
            z = layer.forward(*xs)  # not layer(...): its hooks would attach the rule again
            gs = torch.autograd.grad(z, xs, grad_outputs=shares(relevance, z.detach(), self.stabilizer))
        return tuple(x * g for x, g in zip(inputs, gs))  # g may be shared (an addition's gradient)


def pooling_transpose(layer: nn.Module, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor | None:
    """``J^T s`` of a 2D or 3D average pooling (fixed or adaptive) by its backward kernel, without
    the forward pass autograd would recompute first (a new tensor); ``None`` for other layers."""
    rank = x.ndim - 2
    if isinstance(layer, (nn.AvgPool2d, nn.AvgPool3d)) and rank == (2 if isinstance(layer, nn.AvgPool2d) else 3):
        def per_axis(v):
            return list(v) if isinstance(v, (tuple, list)) else [v] * rank
        backward = torch.ops.aten.avg_pool2d_backward if rank == 2 else torch.ops.aten.avg_pool3d_backward
        return backward(s, x, per_axis(layer.kernel_size), per_axis(layer.stride), per_axis(layer.padding),
                        layer.ceil_mode, layer.count_include_pad, layer.divisor_override)
    if isinstance(layer, nn.AdaptiveAvgPool2d) and rank == 2:
        return torch.ops.aten._adaptive_avg_pool2d_backward(s.contiguous(), x)
    if isinstance(layer, nn.AdaptiveAvgPool3d) and rank == 3:
        return torch.ops.aten._adaptive_avg_pool3d_backward(s.contiguous(), x)
    return None


class Pass(Rule):
    """Relevance passes unchanged (activations, batch norms not folded into a layer)."""

    name = "pass"
    needs_params = False

    def relevance(self, layer, inputs, relevance, params, output=None):
        return (relevance,)


class Constant(Rule):
    """No relevance to the input: the output is held constant (attention probabilities, the
    "AH" rule of Ali et al., "XAI for Transformers: Better Explanations through Conservative
    Propagation", ICML 2022, kept by AttnLRP, Achtibat et al. 2024). :mod:`~medlens.attribution.lrp.core`
    detaches the layer's output, so that the product ``P @ v`` that uses it is a linear map of
    the values with constant weights, which the canonizers give the epsilon rule
    (``R_vj = sum_i P_ij v_j / stab(o_i) R_i``: each value its contribution's share)."""

    name = "constant"
    needs_params = False

    def relevance(self, layer, inputs, relevance, params, output=None):
        return tuple(torch.zeros_like(x) for x in inputs)


@dataclass(repr=False)
class LayerNorm(Rule):
    """The LN rule of Ali et al. (ICML 2022): ``y = gamma (x - mean(x)) / sigma + beta`` with
    ``sigma`` held constant is a linear map of ``x`` (the centring, then a scale), whose relevance
    follows the epsilon rule: ``R_x = x * J^T (R / stab(y))`` with ``J^T s = u - mean(u)``,
    ``u = gamma s / sigma``. Conservative when ``beta = 0``; the identity it replaces handed a
    zero input (a zeroed class token) relevance that its own input never carried."""

    stabilizer: float = 1e-6
    name = "layer_norm"
    needs_params = False
    uses_output = True

    def relevance(self, layer, inputs, relevance, params, output=None):
        (x,) = inputs
        dims = tuple(range(-len(layer.normalized_shape), 0))
        y = output if output is not None else F.layer_norm(x, layer.normalized_shape, layer.weight, layer.bias,
                                                           layer.eps)
        u = shares(relevance, y, self.stabilizer)
        if layer.weight is not None:
            u.mul_(layer.weight.detach())
        u.mul_(x.var(dims, unbiased=False, keepdim=True).add_(layer.eps).rsqrt_())
        return (u.sub_(u.mean(dims, keepdim=True)).mul_(x),)


RULES = {
    "epsilon": Epsilon, "zplus": ZPlus, "alpha_beta": AlphaBeta, "gamma": Gamma, "flat": Flat,
    "wsquare": WSquare, "zbox": ZBox, "norm": Norm, "pass": Pass, "constant": Constant, "layer_norm": LayerNorm,
}
