"""Each LRP rule against the naive formula ``R_j = sum_k c_jk / stab(sum_j' c_j'k + b_k) R_k``
written out element by element, for inputs of either sign; grouped convolutions against the
same layer written as one dense convolution (its block-diagonal weight)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medlens.attribution.lrp.rules import (
    AlphaBeta,
    Epsilon,
    Flat,
    Gamma,
    WSquare,
    ZBox,
    ZPlus,
    stabilize,
)

EPS = 1e-6
LOW, HIGH = -2.0, 3.0


def _stab(z: float) -> float:
    return z + (EPS if z >= 0 else -EPS)


def naive(rule, w: torch.Tensor, b: torch.Tensor, x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """One sample of a linear layer ``z_k = sum_j w_kj x_j + b_k``, loops over ``j`` and ``k``."""
    n_out, n_in = w.shape
    z = [float(w[k] @ x + b[k]) for k in range(n_out)]
    out = torch.zeros(n_in, dtype=torch.float64)
    for k in range(n_out):
        terms = []  # (contributions c_j, bias, factor)
        prod = [float(w[k, j] * x[j]) for j in range(n_in)]
        bk = float(b[k])
        if isinstance(rule, Epsilon):
            terms.append((prod, bk, 1.0))
        elif isinstance(rule, ZPlus):
            terms.append(([max(c, 0.0) for c in prod], max(bk, 0.0), 1.0))
        elif isinstance(rule, AlphaBeta):
            terms.append(([max(c, 0.0) for c in prod], max(bk, 0.0), rule.alpha))
            terms.append(([min(c, 0.0) for c in prod], min(bk, 0.0), -rule.beta))
        elif isinstance(rule, Gamma):
            g = rule.gamma
            if z[k] > 0:
                terms.append(([c + g * max(c, 0.0) for c in prod], bk + g * max(bk, 0.0), 1.0))
            elif z[k] < 0:
                terms.append(([c + g * min(c, 0.0) for c in prod], bk + g * min(bk, 0.0), 1.0))
        elif isinstance(rule, ZBox):
            c = [float(w[k, j] * x[j] - max(w[k, j], 0) * LOW - min(w[k, j], 0) * HIGH) for j in range(n_in)]
            terms.append((c, 0.0, 1.0))
        elif isinstance(rule, Flat):
            terms.append(([1.0] * n_in, 0.0, 1.0))
        elif isinstance(rule, WSquare):
            terms.append(([float(w[k, j] ** 2) for j in range(n_in)], bk ** 2, 1.0))
        for c, bias, factor in terms:
            den = _stab(sum(c) + bias)
            for j in range(n_in):
                out[j] += factor * c[j] / den * float(r[k])
    return out


RULES = [Epsilon(EPS), ZPlus(EPS), AlphaBeta(2.0, 1.0, EPS), AlphaBeta(1.0, 0.0, EPS), Gamma(0.25, EPS),
         ZBox(LOW, HIGH, EPS), Flat(EPS), WSquare(EPS)]


@pytest.mark.parametrize("signs", ["mixed", "nonnegative"])
@pytest.mark.parametrize("rule", RULES, ids=lambda r: repr(r))
def test_rule_equals_the_naive_formula(rule, signs):
    gen = torch.Generator().manual_seed(0)
    layer = nn.Linear(7, 5).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(5, 7, generator=gen, dtype=torch.float64))
        layer.bias.copy_(torch.randn(5, generator=gen, dtype=torch.float64))
    x = torch.randn(3, 7, generator=gen, dtype=torch.float64).clamp(LOW, HIGH)
    if signs == "nonnegative":
        x = x.clamp(min=0)
    r = torch.randn(3, 5, generator=gen, dtype=torch.float64)
    w, b = layer.weight.detach(), layer.bias.detach()
    with torch.no_grad():
        (ours,) = rule.relevance(layer, (x,), r, (w, b), layer(x) if rule.uses_output else None)
    expected = torch.stack([naive(rule, w, b, x[i], r[i]) for i in range(3)])
    torch.testing.assert_close(ours, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("signs", ["mixed", "nonnegative"])
@pytest.mark.parametrize("rule", [r for r in RULES if not isinstance(r, Flat)], ids=lambda r: repr(r))
def test_grouped_convolution_equals_its_dense_form(rule, signs):
    gen = torch.Generator().manual_seed(1)
    grouped = nn.Conv1d(4, 6, 3, padding=1, groups=2).double()
    dense = nn.Conv1d(4, 6, 3, padding=1).double()
    with torch.no_grad():
        grouped.weight.copy_(torch.randn(6, 2, 3, generator=gen, dtype=torch.float64))
        dense.weight.zero_()
        dense.weight[:3, :2] = grouped.weight[:3]
        dense.weight[3:, 2:] = grouped.weight[3:]
        dense.bias.copy_(grouped.bias)
    x = torch.randn(2, 4, 9, generator=gen, dtype=torch.float64).clamp(LOW, HIGH)
    if signs == "nonnegative":
        x = x.clamp(min=0)
    r = torch.randn(2, 6, 9, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(grouped(x), dense(x))
        outs = [layer(x) if rule.uses_output else None for layer in (grouped, dense)]
        (ours,) = rule.relevance(grouped, (x,), r, (grouped.weight, grouped.bias), outs[0])
        (reference,) = rule.relevance(dense, (x,), r, (dense.weight, dense.bias), outs[1])
    torch.testing.assert_close(ours, reference, rtol=1e-9, atol=1e-12)


def test_stabiliser_signs_zero_as_positive():
    z = torch.tensor([-2.0, -0.0, 0.0, 3.0, -1e-30])
    torch.testing.assert_close(stabilize(z, 0.5), torch.tensor([-2.5, 0.5, 0.5, 3.5, -0.5]))
