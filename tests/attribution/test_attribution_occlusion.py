"""Occlusion: Captum as oracle, closed form on a linear model, window geometry."""

import pytest
import torch

import medlens
from medlens.attribution import incremental as incremental_module
from medlens.attribution.occlusion import default_window, window_starts
from medlens.errors import InputError
from tests.conftest import make_input, make_model


CASES = {1: ((9,), (4,)), 2: ((5, 7), (3, 4)), 3: ((5, 5, 6), (3, 4, 5))}


@pytest.mark.parametrize("per_channel", [False, True])
@pytest.mark.parametrize("incremental", [True, False])
def test_occlusion_equals_captum(spatial_dims, per_channel, incremental, monkeypatch):
    captum_attr = pytest.importorskip("captum.attr")
    monkeypatch.setattr(incremental_module, "BOOKKEEPING_S", 0.0)  # tiny models: force the chain
    model, x = make_model(spatial_dims), make_input(spatial_dims)
    window, stride = CASES[spatial_dims]
    ours = medlens.explain(model, x, target=[0, 2, 1], method="occlusion", window=window, stride=stride,
                           baseline=0.25, per_channel=per_channel, incremental=incremental, batch_size=7).values
    c = x.shape[1]
    theirs = captum_attr.Occlusion(model).attribute(
        x, target=[0, 2, 1], baselines=0.25, perturbations_per_eval=3,
        sliding_window_shapes=(1 if per_channel else c, *window), strides=(1 if per_channel else c, *stride))
    assert ours.shape == (3, c if per_channel else 1, *x.shape[2:])
    torch.testing.assert_close(ours.expand_as(theirs), theirs.to(ours.dtype), rtol=1e-4, atol=1e-6)


def test_unit_windows_on_a_linear_model_give_w_times_x(spatial_dims):
    x = make_input(spatial_dims)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(x[0].numel(), 2)).double()
    w = model[1].weight.detach()[1].view_as(x[0])
    attr = medlens.explain(model, x, target=1, method="occlusion", window=1, stride=1, per_channel=True).values
    torch.testing.assert_close(attr, w * x, rtol=1e-9, atol=1e-12)
    # windows spanning all channels credit each location with the sum over its channels
    joint = medlens.explain(model, x, target=1, method="occlusion", window=1, stride=1).values
    torch.testing.assert_close(joint, (w * x).sum(1, keepdim=True), rtol=1e-9, atol=1e-12)


def test_window_geometry_covers_every_element():
    assert window_starts(24, 5, 3) == [0, 3, 6, 9, 12, 15, 18, 21]  # last window clipped at the border
    assert window_starts(8, 8, 1) == [0]
    assert default_window((28, 28)) == (4, 4)
    assert default_window((128, 128)) == (16, 16)
    assert default_window((96, 96, 96)) == (12, 12, 12)
    assert default_window((5,)) == (1,)


@pytest.mark.parametrize("options, message", [
    ({"window": 30}, "larger than the input"),
    ({"window": 4, "stride": 5}, "exceeds the window"),
    ({"window": (3, 3, 3)}, "3 value"),
    ({"window": 0}, "at least 1"),
    ({"window": 2.5}, "integer"),
])
def test_bad_windows(options, message):
    model, x = make_model(2), make_input(2)
    with pytest.raises(InputError, match=message):
        medlens.explain(model, x, method="occlusion", **options)
