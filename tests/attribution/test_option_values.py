"""Option values a method cannot mean are refused in one line, before the model runs: a switch
given as a string (``abs="no"`` is true by truth value) or a number, LRP's epsilon at or below
zero (division by zero where contributions cancel) and a NaN gamma."""

import numpy as np
import pytest
import torch
from torch import nn

import medlens
from medlens.errors import InputError


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(2 * 6 * 6, 3))


@pytest.mark.parametrize("method, option, value", [
    ("gradient", "abs", "no"),
    ("gradient", "abs", 1),
    ("gradcam", "upsample", "false"),
    ("occlusion", "per_channel", None),
    ("integrated_gradients", "linear_entry", "yes"),
])
def test_switch_given_as_anything_but_a_bool_is_refused(method, option, value):
    with pytest.raises(InputError, match=f"option {option} must be True or False"):
        medlens.explain(_model(), torch.rand(2, 1, 8, 8), method=method, **{option: value})


def test_numpy_bool_is_a_bool():
    x = torch.rand(2, 1, 8, 8)
    a = medlens.explain(_model(), x, method="gradient", abs=np.bool_(True)).values
    b = medlens.explain(_model(), x, method="gradient", abs=True).values
    torch.testing.assert_close(a, b)


@pytest.mark.parametrize("options, words", [
    ({"epsilon": -1.0}, "LRP epsilon"),
    ({"epsilon": 0.0}, "LRP epsilon"),
    ({"epsilon": float("nan")}, "LRP epsilon"),
    ({"gamma": float("nan")}, "LRP gamma"),
    ({"gamma": -0.5}, "LRP gamma"),
])
def test_lrp_parameters_outside_their_range_are_refused(options, words):
    with pytest.raises(InputError, match=words):
        medlens.explain(_model(), torch.rand(2, 1, 8, 8), method="lrp", composite="epsilon", **options)


def test_lrp_zero_through_a_tiny_epsilon_still_runs():
    attr = medlens.explain(_model(), torch.rand(2, 1, 8, 8), method="lrp", composite="epsilon", epsilon=1e-12)
    assert torch.isfinite(attr.values).all()
