"""LRP through operations a model writes as functions, not modules.

Gates: squeeze-and-excitation ``x * sigmoid(fc(pool(x)))`` and a functional swish ``x * sigmoid(x)``
hand the whole relevance to the signal, none to the gate (signal-take-all). Global pooling
``x.mean(dim=(2, 3))`` splits it in proportion to the elements (the norm rule of pooling modules);
scaling by a constant (``x / 255``) passes it unchanged.

A plain gradient gave the gate ``x R`` too: on MONAI's SEResNet50 the relevance summed to 1e12
times the logit. With the gates treated as constants, LRP-0 (epsilon -> 0, no biases) conserves
the logit exactly, as it does on a plain ResNet: the signal already carries the whole relevance,
so any given to the gate would show as a surplus.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import medlens
from medlens.attribution.lrp.canonizers import gate_of


class SqueezeExcite(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 2, bias=False), nn.ReLU(),
                                nn.Linear(2, c, bias=False), nn.Sigmoid())

    def forward(self, x):
        return x * self.fc(x)[:, :, None, None]


class TinySEResNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.se = SqueezeExcite(4)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4, 3, bias=False)

    def forward(self, x):
        h = torch.relu(self.stem(x))
        h = h + self.se(torch.relu(self.conv(h)))  # residual sum around a gated branch
        h = h * torch.sigmoid(h)  # functional swish
        return self.head(self.pool(h))


def _model() -> nn.Module:
    torch.manual_seed(0)
    return TinySEResNet().double().eval()


def test_lrp_zero_conserves_the_logit_through_gates():
    model = _model()
    x = torch.randn(3, 1, 12, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    relevance = medlens.explain(model, x, 1, "lrp", composite="epsilon", epsilon=1e-12).values
    with torch.no_grad():
        logits = model(x)[:, 1]
    torch.testing.assert_close(relevance.sum(dim=(1, 2, 3)), logits, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("a_shape, b_shape, gate", [
    ((2, 4, 5, 5), (2, 4, 1, 1), 1), ((2, 4, 1, 1), (2, 4, 5, 5), 0), ((2, 4, 1, 5), (2, 4, 5, 1), None),
])
def test_the_broadcast_operand_is_the_gate(a_shape, b_shape, gate):
    a, b = torch.ones(a_shape, requires_grad=True) * 1.0, torch.ones(b_shape, requires_grad=True) * 1.0
    assert gate_of(a, b) == gate


def test_of_two_same_shaped_operands_the_sigmoid_is_the_gate():
    x = torch.randn(2, 3, requires_grad=True) * 1.0
    assert gate_of(x, torch.sigmoid(x)) == 1 and gate_of(torch.softmax(x, 1), x) == 0
    assert gate_of(torch.sigmoid(x), torch.sigmoid(x)) is None and gate_of(x * 3, x * 2) is None


def test_a_gate_on_a_one_by_one_map_is_found_by_what_it_was_computed_from():
    """MONAI's SEResNet50 at 32^2 squeezes the last stage to 1x1: the gate has the signal's shape and
    reaches the product through a Pass rule and a view. It summed to 7,716 times the logit."""

    class PooledSE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3, padding=1, bias=False)
            self.se = SqueezeExcite(4)
            self.head = nn.Linear(4, 3, bias=False)

        def forward(self, x):
            pooled = nn.functional.adaptive_max_pool2d(torch.relu(self.conv(x)), 1)  # (B, 4, 1, 1)
            return self.head(self.se(pooled).flatten(1))

    torch.manual_seed(0)
    model = PooledSE().double().eval()
    x = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    relevance = medlens.explain(model, x, 2, "lrp", composite="epsilon", epsilon=1e-12).values
    with torch.no_grad():
        logits = model(x)[:, 2]
    torch.testing.assert_close(relevance.sum(dim=(1, 2, 3)), logits, rtol=1e-7, atol=1e-9)


SCALE = torch.tensor([0.5, 2.0, 1.5, 3.0], dtype=torch.float64)[None, :, None, None]


class FunctionalHead(nn.Module):
    """stem -> ReLU -> conv -> ReLU -> (a constant scaling) -> a functional global pooling -> linear."""

    def __init__(self, pool: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.pool = pool
        self.stem = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.conv = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.head = nn.Linear(4, 3, bias=False)

    def forward(self, x):
        if self.pool == "input / 255":
            x = x / 255.0
        h = torch.relu(self.conv(torch.relu(self.stem(x))))
        if self.pool == "h * 0.5":
            h = h * 0.5
        elif self.pool == "3.0 * h":
            h = 3.0 * h
        elif self.pool == "per-channel scale":
            h = h * SCALE
        if self.pool == "sum / 144":
            return self.head(torch.sum(h, (-1, -2)) / 144)
        if self.pool == "mean keepdim":
            return self.head(h.mean((2, 3), keepdim=True).flatten(1))
        return self.head(h.mean(dim=(2, 3)))


@pytest.mark.parametrize("pool", ["mean", "mean keepdim", "sum / 144", "input / 255", "h * 0.5", "3.0 * h",
                                  "per-channel scale"])
def test_lrp_zero_conserves_the_logit_through_functional_pooling_and_scaling(pool):
    """A plain gradient lost 35-50% of the logit at the mean (shares of elements a ReLU had zeroed)
    and scaled it by every constant."""
    model = FunctionalHead(pool).double().eval()
    x = torch.randn(3, 1, 12, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    relevance = medlens.explain(model, x, 1, "lrp", composite="epsilon", epsilon=1e-12).values
    with torch.no_grad():
        logits = model(x)[:, 1]
    torch.testing.assert_close(relevance.sum(dim=(1, 2, 3)), logits, rtol=1e-6, atol=1e-9)


def test_a_bare_in_place_scaling_keeps_the_models_forward():
    """``h.mul_(0.5)`` whose result is not assigned: a rewrite to a new tensor would drop the
    scaling from the forward LRP explains, so it is left to the plain gradient."""

    class InPlace(FunctionalHead):
        def forward(self, x):
            h = torch.relu(self.conv(torch.relu(self.stem(x)))).clone()
            h.mul_(0.5)
            return self.head(h.mean(dim=(2, 3)))

    model = InPlace("mean").double().eval()
    x = torch.randn(2, 1, 12, 12, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    relevance = medlens.explain(model, x, 0, "lrp", composite="epsilon", epsilon=1e-12).values
    with torch.no_grad():
        logits = model(x)[:, 0]
    # the pooled half-scaled features reach the head: relevance is half the logit's through mul_'s gradient
    torch.testing.assert_close(relevance.sum(dim=(1, 2, 3)), 0.5 * logits, rtol=1e-6, atol=1e-9)
