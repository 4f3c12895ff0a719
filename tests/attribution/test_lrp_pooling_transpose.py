"""The LRP norm rule's average-pooling transpose (by the backward kernel, no forward pass) equals
autograd's vector-Jacobian product, for every pooling option."""

import pytest
import torch
from torch import nn

from medlens.attribution.lrp.rules import Norm, pooling_transpose

LAYERS = [
    nn.AvgPool2d(2), nn.AvgPool2d(3, stride=2, padding=1), nn.AvgPool2d((3, 2), stride=(2, 1), ceil_mode=True),
    nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), nn.AvgPool2d(2, divisor_override=3),
    nn.AdaptiveAvgPool2d(1), nn.AdaptiveAvgPool2d((3, 5)),
    nn.AvgPool3d(2), nn.AvgPool3d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False),
    nn.AdaptiveAvgPool3d(1), nn.AdaptiveAvgPool3d((2, 3, 4)),
]


@pytest.mark.parametrize("layer", LAYERS, ids=repr)
def test_pooling_transpose_equals_autograd(layer):
    rank = 3 if "3d" in type(layer).__name__ else 2
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, *(11, 9, 7)[:rank], generator=g, dtype=torch.float64).requires_grad_(True)
    z = layer(x)
    s = torch.randn(z.shape, generator=g, dtype=torch.float64)
    (expected,) = torch.autograd.grad(z, x, s)
    got = pooling_transpose(layer, x.detach(), s)
    assert got is not None
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    # the rule with the layer's output equals the rule that recomputes it
    rule, r = Norm(), torch.rand(z.shape, generator=g, dtype=torch.float64)
    (direct,) = rule.relevance(layer, (x.detach(),), r, None, z.detach())
    (recomputed,) = rule.relevance(layer, (x.detach(),), r, None, None)
    torch.testing.assert_close(direct, recomputed, rtol=1e-12, atol=1e-12)


def test_other_layers_go_through_autograd():
    assert pooling_transpose(nn.AvgPool1d(2), torch.rand(1, 2, 8), torch.rand(1, 2, 4)) is None
    assert pooling_transpose(nn.MaxPool2d(2), torch.rand(1, 2, 8, 8), torch.rand(1, 2, 4, 4)) is None
