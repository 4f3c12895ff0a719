"""Counted model cost and the defaults chosen from it (medlens.core.cost)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import medlens
from medlens.attribution.occlusion import default_window, half_strides, window_count
from medlens.core import cost
from medlens.errors import InputError


def conv_net(channels: int = 4, size: int = 16) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(channels * size * size, 3)
    ).eval()


def closed_form_flops(channels: int, size: int) -> int:
    """2 multiply-adds per weight use: the convolution at every output position, then the linear layer."""
    conv = 2 * channels * 1 * 3 * 3 * size * size
    linear = 2 * channels * size * size * 3
    return conv + linear


@pytest.mark.parametrize("channels,size", [(4, 16), (8, 12)])
def test_forward_flops_is_the_closed_form(channels, size):
    model = conv_net(channels, size)
    x = torch.randn(5, 1, size, size)
    assert cost.forward_flops(model, x) == closed_form_flops(channels, size)  # per input, not per batch


def test_meta_count_equals_a_real_pass_and_torchscript():
    model = conv_net()
    x = torch.randn(1, 1, 16, 16)
    assert cost._count_on_meta(model, x) == cost._count_for_real(model, x)
    scripted = torch.jit.trace(model, x)
    assert cost.forward_flops(scripted, x) == closed_form_flops(4, 16)


def test_a_model_that_needs_real_values_is_counted_for_real():
    class DataDependent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.linear = nn.Linear(8, 2)

        def forward(self, x):
            if x.sum().item() > 1e9:  # .item() is impossible on the meta device
                return self.linear(x * 2)
            return self.linear(x)

    model = DataDependent()
    x = torch.randn(1, 8)
    assert cost._count_on_meta(model, x) is None
    assert cost.forward_flops(model, x) == 2 * 8 * 2


def test_a_model_that_does_not_fit_gets_a_one_line_input_error():
    class Strict(nn.Module):
        def forward(self, x):
            if x.shape[-1] != 10:
                raise RuntimeError("mat1 and mat2 shapes cannot be multiplied\nmore")
            return x

    with pytest.raises(InputError, match="does not fit the model: mat1") as err:
        cost.forward_flops(Strict(), torch.randn(1, 3))
    assert "\n" not in str(err.value)


def test_affordable_clamps_to_the_budget():
    model = conv_net()
    x = torch.randn(1, 1, 16, 16)
    flops = cost.forward_cost(model, x)  # the per-operator price of one pass (issue 23), not its raw FLOPs
    assert cost.affordable(model, x, passes=1, low=2, high=10**9, budget=100 * flops) == 100
    assert cost.affordable(model, x, passes=3, low=2, high=10**9, budget=100 * flops) == 33
    assert cost.affordable(model, x, passes=1, low=2, high=50, budget=100 * flops) == 50
    assert cost.affordable(model, x, passes=1, low=200, high=10**9, budget=100 * flops) == 200


def test_default_window_grows_only_when_the_windows_do_not_fit():
    assert default_window((64, 64, 64)) == (8, 8, 8)
    assert default_window((64, 64, 64), max_windows=10**6) == (8, 8, 8)
    win = default_window((64, 64, 64), max_windows=39)  # 2.5 TFLOP / 63 GFLOP
    assert win == (32, 32, 32) and window_count((64,) * 3, win, half_strides(win)) == 27
    win = default_window((224, 224), max_windows=300)
    assert win == (28, 28) and window_count((224, 224), win, half_strides(win)) == 225
    assert default_window((64, 64), max_windows=1) == (32, 32)  # the coarsest whatever the limit


@pytest.fixture
def tight_budget(monkeypatch):
    """A budget of 40 forward passes of :func:`conv_net` on 16x16 (priced by the per-operator
    cost model), as if the model were expensive."""
    monkeypatch.setattr(cost, "FLOP_BUDGET", 40 * cost.forward_cost(conv_net(), torch.randn(1, 1, 16, 16)))


@pytest.mark.parametrize("method,name,cheap,expensive", [
    ("rise", "n_masks", 1000, 40),
    ("smoothgrad", "n_samples", 50, 13),
    ("integrated_gradients", "n_steps", 50, 16),  # at least 16 quadrature points
    ("occlusion", "window", (2, 2), (8, 8)),
])
def test_defaults_follow_the_counted_cost_and_are_recorded(method, name, cheap, expensive, request):
    model = conv_net()
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    usual = medlens.explain(model, x, 1, method)
    assert usual.params[name] == cheap and "note" not in usual.extras
    request.getfixturevalue("tight_budget")
    reduced = medlens.explain(model, x, 1, method)
    assert reduced.params[name] == expensive
    assert name in reduced.extras["note"] and "TFLOP" in reduced.extras["note"]
    again = medlens.explain(model, x, 1, method)
    assert torch.equal(again.values, reduced.values)  # same counts, same seed: the same map
    given = medlens.explain(model, x, 1, method, **{name: expensive})
    assert torch.allclose(given.values, reduced.values, atol=1e-6)  # equal to asking for it


def test_the_default_does_not_depend_on_the_batch():
    model = conv_net()
    x = torch.randn(3, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    whole = medlens.explain(model, x, 2, "rise")
    first = medlens.explain(model, x[:1], 2, "rise")
    assert whole.params["n_masks"] == first.params["n_masks"]
    assert torch.allclose(whole.values[:1], first.values, atol=1e-6)
