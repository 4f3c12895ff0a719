"""The fixed per-operator cost model (medlens.core.op_cost, issue 23)."""

from __future__ import annotations

import torch
from torch import nn

from medlens.core import op_cost


def test_the_price_depends_only_on_the_model_and_the_shape():
    model = nn.Sequential(nn.Conv3d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv3d(8, 8, 3, padding=1)).eval()
    a = op_cost.price(model, torch.randn(1, 1, 16, 16, 16))
    b = op_cost._price_for_real(model, torch.randn(1, 1, 16, 16, 16))
    assert a.calls == b.calls and abs(a.seconds - b.seconds) < 1e-12
    assert a.flops == 2 * (8 * 27 + 8 * 8 * 27) * 16**3  # convolutions counted like FlopCounterMode
    bigger = op_cost.price(model, torch.randn(1, 1, 32, 32, 32))
    assert 7.5 < bigger.seconds / a.seconds < 8.5  # linear in the voxels


def test_the_price_is_the_same_under_inference_mode():
    """Under inference mode a convolution reaches the dispatcher as aten.conv3d, which the FLOP
    registry does not count: it was priced as memory traffic only."""
    model = nn.Sequential(nn.Conv3d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv3d(8, 8, 3, padding=1)).eval()
    x = torch.randn(1, 1, 12, 12, 12)
    with torch.inference_mode():
        inside = op_cost._price_on_meta(model, x)
        real = op_cost._price_for_real(model, x)
    outside = op_cost._price_on_meta(model, x)
    assert outside.flops > 0
    assert inside.flops == real.flops == outside.flops and abs(inside.seconds - outside.seconds) < 1e-12
    in_place_first = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(1, 4, 3)).eval()
    with torch.inference_mode():
        one = torch.randn(1, 1, 8, 8)  # an inference tensor
        assert op_cost._price_for_real(in_place_first, one).flops == 2 * 4 * 9 * 6 * 6


def test_slow_operators_cost_more_than_their_flops():
    narrow = nn.Conv3d(8, 8, 3, padding=1).eval()  # a memory-bound 3D convolution
    wide = nn.Conv3d(128, 128, 3, padding=1).eval()
    x8, x128 = torch.randn(1, 8, 16, 16, 16), torch.randn(1, 128, 4, 4, 4)
    pn, pw = op_cost.price(narrow, x8), op_cost.price(wide, x128)
    assert pn.flops / pn.compute_s < 0.2 * pw.flops / pw.compute_s
    # operators that count no FLOP (batch norm, activations, concatenation) still cost time
    bn = nn.Sequential(nn.BatchNorm2d(4), nn.ReLU()).eval()
    p = op_cost.price(bn, torch.randn(1, 4, 64, 64))
    assert p.flops == 0 and p.seconds > 0 and p.calls >= 2
    assert op_cost.effective_flops(bn, torch.randn(1, 4, 64, 64)) > 0
