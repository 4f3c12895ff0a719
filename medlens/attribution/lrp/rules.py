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

from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import nn

Params = Optional[Tuple[torch.Tensor, Optional[torch.Tensor]]]
#: one term of a rule: (modified input, modified weight, modified bias)
Term = Tuple[torch.Tensor, torch.Tensor, Optional[torch.Tensor]]


def stabilize(z: torch.Tensor, epsilon: float) -> torch.Tensor:
    """``z + epsilon * sign(z)`` with ``sign(0) = +1``: a denominator that is never zero."""
    return z + epsilon * torch.where(z >= 0, 1.0, -1.0).to(z.dtype)


def apply_linear(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """The affine map of ``layer`` (a linear or convolution layer) with other parameters."""
    if isinstance(layer, nn.Linear):
        return F.linear(x, weight, bias)
    return layer._conv_forward(x, weight, bias)  # convolutions of every rank, any padding mode


def _pos(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clamp(min=0)


def _neg(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.clamp(max=0)


def transpose(layer: nn.Module, x: torch.Tensor, weight: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    """``J^T s``: the gradient of ``<layer(x; weight), s>`` with respect to ``x`` (independent of
    ``x``'s values: the layer is affine in it).

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


def _backward(layer: nn.Module, terms: Sequence[Term], scales: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """``J_k^T s_k`` for each term ``k``: the gradient of ``<layer_k(x_k), s_k>`` w.r.t. ``x_k``."""
    return [transpose(layer, x, w, s) for (x, w, _), s in zip(terms, scales)]


def _forward(layer: nn.Module, terms: Sequence[Term]) -> list[torch.Tensor]:
    return [apply_linear(layer, x, w, b) for x, w, b in terms]


class Rule:
    """A rule for layers with a weight (linear layers, convolutions).

    ``relevance(layer, inputs, relevance, params, output)`` returns one relevance tensor per
    input; ``output`` is the layer's output of the forward pass (after a folded batch norm) for
    rules that set ``uses_output``, else ``None``.
    """

    name = "rule"
    needs_params = True
    uses_output = False

    def relevance(
        self, layer: nn.Module, inputs: Tuple[torch.Tensor, ...], relevance: torch.Tensor, params: Params,
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
        (g,) = _backward(layer, [(x, w, b)], [relevance / stabilize(z, self.epsilon)])
        return (x * g,)


def _signed_relevance(layer: nn.Module, x: torch.Tensor, w_pos: torch.Tensor, b_pos, w_neg: torch.Tensor,
                      relevance: torch.Tensor, stabilizer: float, nonneg: bool,
                      gate: torch.Tensor | None = None) -> torch.Tensor:
    """``x+ J(w_pos)^T s + x- J(w_neg)^T s`` with ``s = gate R / stab(layer(x+; w_pos, b_pos) +
    layer(x-; w_neg, 0))``: the relevance of a rule that treats positive and negative inputs
    with their own weights.

    After a ReLU (``nonneg``) the second part is exactly zero and left out. Otherwise both parts
    run as one layer call over the inputs stacked along the channels (``[x+, x-]`` with
    ``[w_pos, w_neg]``): the same sums, one convolution and one transposed convolution instead
    of two each (a first layer with one input channel costs about the same with two).
    """
    if nonneg:
        xs, w = x, w_pos
    elif getattr(layer, "groups", 1) == 1:
        axis = -1 if isinstance(layer, nn.Linear) else 1
        xs, w = torch.cat([x.clamp(min=0), x.clamp(max=0)], dim=axis), torch.cat([w_pos, w_neg], dim=1)
    else:  # grouped convolutions: stacking would mix the groups, so two calls
        xp, xn = x.clamp(min=0), x.clamp(max=0)
        z = apply_linear(layer, xp, w_pos, b_pos) + apply_linear(layer, xn, w_neg, None)
        s = relevance / stabilize(z, stabilizer)
        s = s if gate is None else s * gate
        return xp * transpose(layer, xp, w_pos, s) + xn * transpose(layer, xn, w_neg, s)
    s = relevance / stabilize(apply_linear(layer, xs, w, b_pos), stabilizer)
    s = s if gate is None else s * gate
    r = xs * transpose(layer, xs, w, s)
    if xs is x:
        return r
    pos, neg = r.chunk(2, dim=-1 if isinstance(layer, nn.Linear) else 1)
    return pos + neg


@dataclass(repr=False)
class ZPlus(Rule):
    """LRP-z+: only positive contributions ``(a_j w_jk)^+`` (inputs of either sign, as in Zennit)."""

    stabilizer: float = 1e-6
    name = "zplus"

    def relevance(self, layer, inputs, relevance, params, output=None):
        (x,) = inputs
        w, b = params
        return (_signed_relevance(layer, x, _pos(w), _pos(b), _neg(w), relevance, self.stabilizer,
                                  bool((x >= 0).all())),)


@dataclass(repr=False)
class AlphaBeta(Rule):
    """LRP-alpha-beta: ``alpha`` times the positive minus ``beta`` times the negative contributions,
    each normalised by its own sum (``alpha - beta = 1``)."""

    alpha: float = 2.0
    beta: float = 1.0
    stabilizer: float = 1e-6
    name = "alpha_beta"

    def __post_init__(self) -> None:
        if self.alpha < 0 or self.beta < 0 or abs(self.alpha - self.beta - 1) > 1e-12:
            raise ValueError(f"alpha-beta needs alpha, beta >= 0 and alpha - beta = 1, got {self.alpha}, {self.beta}")

    def relevance(self, layer, inputs, relevance, params, output=None):
        (x,) = inputs
        w, b = params
        nonneg = bool((x >= 0).all())
        out = 0
        for factor, (wp, bp, wn) in ((self.alpha, (_pos(w), _pos(b), _neg(w))), (-self.beta, (_neg(w), _neg(b), _pos(w)))):
            if factor != 0:
                out = out + factor * _signed_relevance(layer, x, wp, bp, wn, relevance, self.stabilizer, nonneg)
        return (out,)


@dataclass(repr=False)
class Gamma(Rule):
    """LRP-gamma (generalised to inputs of either sign): contributions of the output's sign are
    favoured by ``gamma`` (``w + gamma w^+`` for positive outputs, ``w + gamma w^-`` for negative)."""

    gamma: float = 0.25
    stabilizer: float = 1e-6
    name = "gamma"
    uses_output = True

    def relevance(self, layer, inputs, relevance, params, output=None):
        (x,) = inputs
        w, b = params
        g = self.gamma

        def up(t, part):
            return None if t is None else t + g * part(t)

        z = apply_linear(layer, x, w, b) if output is None else output
        nonneg = bool((x >= 0).all())
        out = 0
        for gate, (w1, b1, w2) in (
            (z > 0, (up(w, _pos), up(b, _pos), up(w, _neg))),
            (z < 0, (up(w, _neg), up(b, _neg), up(w, _pos))),
        ):
            out = out + _signed_relevance(layer, x, w1, b1, w2, relevance, self.stabilizer, nonneg, gate.to(z.dtype))
        return (out,)


@dataclass(repr=False)
class Flat(Rule):
    """LRP-flat: relevance spread uniformly over each output's receptive field (weights set to 1)."""

    stabilizer: float = 1e-6
    name = "flat"

    def relevance(self, layer, inputs, relevance, params, output=None):
        (x,) = inputs
        w, _ = params
        ones, w1 = torch.ones_like(x), torch.ones_like(w)
        z = apply_linear(layer, ones, w1, None)
        (g,) = _backward(layer, [(ones, w1, None)], [relevance / stabilize(z, self.stabilizer)])
        return (g,)


@dataclass(repr=False)
class WSquare(Rule):
    """LRP-w^2: relevance in proportion to the squared weights (input-independent)."""

    stabilizer: float = 1e-6
    name = "wsquare"

    def relevance(self, layer, inputs, relevance, params, output=None):
        (x,) = inputs
        w, b = params
        ones, w2, b2 = torch.ones_like(x), w * w, None if b is None else b * b
        z = apply_linear(layer, ones, w2, b2)
        (g,) = _backward(layer, [(ones, w2, b2)], [relevance / stabilize(z, self.stabilizer)])
        return (g,)


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
        w, b = params
        lo, hi = self._bound(self.low, x, torch.amin), self._bound(self.high, x, torch.amax)
        if getattr(layer, "groups", 1) != 1:
            terms = [(x, w, b), (lo, _pos(w), _pos(b)), (hi, _neg(w), _neg(b))]
            zx, zl, zh = _forward(layer, terms)
            s = relevance / stabilize(zx - zl - zh, self.stabilizer)
            gx, gl, gh = _backward(layer, terms, [s, s, s])
            return (x * gx - lo * gl - hi * gh,)
        # the three terms as one layer call over [x, -low, -high] stacked along the channels
        axis = -1 if isinstance(layer, nn.Linear) else 1
        xs, ws = torch.cat([x, -lo, -hi], dim=axis), torch.cat([w, _pos(w), _neg(w)], dim=1)
        bias = None if b is None else b - _pos(b) - _neg(b)
        s = relevance / stabilize(apply_linear(layer, xs, ws, bias), self.stabilizer)
        return (sum((xs * transpose(layer, xs, ws, s)).chunk(3, dim=axis)),)


@dataclass(repr=False)
class Norm(Rule):
    """For parameter-free linear maps (average pooling, sums of branches): each input receives
    relevance in proportion to its contribution, ``R_j = a_j dz_k/da_j / stab(z_k) R_k``."""

    stabilizer: float = 1e-6
    name = "norm"
    needs_params = False

    def relevance(self, layer, inputs, relevance, params, output=None):
        with torch.enable_grad():
            xs = [x.detach().requires_grad_(True) for x in inputs]
            z = layer.forward(*xs)  # not layer(...): its hooks would attach the rule again
            gs = torch.autograd.grad(z, xs, grad_outputs=relevance / stabilize(z.detach(), self.stabilizer))
        return tuple(x * g for x, g in zip(inputs, gs))


class Pass(Rule):
    """Relevance passes unchanged (activations, batch norms not folded into a layer)."""

    name = "pass"
    needs_params = False

    def relevance(self, layer, inputs, relevance, params, output=None):
        return (relevance,)


class Constant(Rule):
    """No relevance to the input: the output is treated as a constant weight (attention
    probabilities in ``probs @ v``: the values receive ``P^T R``, which conserves relevance since
    the rows of ``P`` sum to one; Ali et al., "XAI for Transformers: Better Explanations through
    Conservative Propagation", ICML 2022, and the AttnLRP rule set of Achtibat et al. 2024)."""

    name = "constant"
    needs_params = False

    def relevance(self, layer, inputs, relevance, params, output=None):
        return tuple(torch.zeros_like(x) for x in inputs)


RULES = {
    "epsilon": Epsilon, "zplus": ZPlus, "alpha_beta": AlphaBeta, "gamma": Gamma, "flat": Flat,
    "wsquare": WSquare, "zbox": ZBox, "norm": Norm, "pass": Pass, "constant": Constant,
}
