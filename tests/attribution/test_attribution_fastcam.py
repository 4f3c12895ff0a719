"""FastCAM: a naive reference from the paper and the LLNL reference code, layer choice, CAM product."""

import math

import numpy as np
import pytest
import torch
from scipy import optimize, special, stats

import medlens
from medlens.attribution.common import layer_trace
from medlens.attribution.fastcam import gamma_fit, normalise, scale_layers, smoe_scale
from medlens.errors import InputError, UnknownNameError
from tests.conftest import make_input, make_model
from tests.attribution.test_attribution_rise import linear_resize


LAYERS = ["features.block1.act", "features.block2.act", "features.block3.act"]


def naive_smoe(act: np.ndarray) -> np.ndarray:
    """SMOE scale of (K, *s) activations, location by location: m * log2(m / geometric mean)."""
    out = np.zeros(act.shape[1:])
    for loc in np.ndindex(*act.shape[1:]):
        a = np.maximum(act[(slice(None), *loc)], 0) + 1e-7
        m = a.mean()
        out[loc] = m * (math.log2(m) - np.log2(a).mean())
    return out


def naive_gamma_norm(smap: np.ndarray) -> np.ndarray:
    """CDF of the maximum-likelihood Gamma fit of the map shifted to start at 1e-7 (scipy)."""
    v = smap.ravel() - smap.min() + 1e-7
    s = math.log(v.mean()) - np.log(v).mean()
    k = optimize.brentq(lambda k: math.log(k) - special.digamma(k) - s, 1e-9, 1e9)
    k = min(max(k, 1e-7), 18.0)
    return stats.gamma.cdf(v, k, scale=v.mean() / k).reshape(smap.shape)


def naive_fastcam(model, x, weights):
    """Weighted average of the upsampled, Gamma-normalised SMOE maps of the block outputs."""
    acts = []
    h = x
    for block in model.features:
        h_pre = block.act(block.norm(block.conv(h)))
        acts.append(h_pre)
        h = block.pool(h_pre) if hasattr(block, "pool") else h_pre
    combined = 0
    for w, a in zip(weights, acts):
        smap = naive_gamma_norm(naive_smoe(a[0].detach().numpy()))
        combined = combined + w * linear_resize(smap, x.shape[2:])
    return combined / sum(weights)


@pytest.mark.parametrize("weights", [None, [1.0, 2.0, 3.0]])
def test_fastcam_matches_naive_reference(spatial_dims, weights):
    model, x = make_model(spatial_dims), make_input(spatial_dims, batch=2)
    ours = medlens.explain(model, x, target=0, method="fastcam", cam=None, layers=LAYERS, weights=weights).values
    assert ours.shape == (2, 1, *x.shape[2:])
    for b in range(2):
        expected = naive_fastcam(model, x[b : b + 1], weights or [1.0, 1.0, 1.0])
        torch.testing.assert_close(ours[b, 0], torch.from_numpy(expected), rtol=1e-6, atol=1e-8)


def test_default_layers_are_the_last_of_each_scale(spatial_dims):
    model, x = make_model(spatial_dims), make_input(spatial_dims)
    layers = scale_layers(layer_trace(model, x[:1]), x.ndim)
    assert layers == [model.features.block1.act, model.features.block2.act, model.features.block3.act]
    default = medlens.explain(model, x, target=1, method="fastcam").values
    named = medlens.explain(model, x, target=1, method="fastcam", layers=LAYERS).values
    torch.testing.assert_close(default, named, rtol=0, atol=0)


def test_cam_multiplies_the_range_normalised_gradcam(spatial_dims):
    model, x = make_model(spatial_dims), make_input(spatial_dims)
    plain = medlens.explain(model, x, target=[0, 1, 2], method="fastcam", cam=None).values
    with_cam = medlens.explain(model, x, target=[0, 1, 2], method="fastcam").values
    grad_cam = medlens.explain(model, x, target=[0, 1, 2], method="gradcam").values
    flat = grad_cam.flatten(1)
    low, high = flat.min(1).values, flat.max(1).values
    scaled = ((flat - low[:, None]) / (high - low).clamp_min(1e-12)[:, None]).view_as(grad_cam)  # all-zero CAM: 0
    torch.testing.assert_close(with_cam, plain * scaled, rtol=1e-9, atol=1e-12)
    assert with_cam.min() >= 0 and with_cam.max() <= 1


def test_smoe_of_constant_channels_is_zero_and_grows_with_spread():
    flat = torch.full((1, 8, 3), 2.0, dtype=torch.float64)
    assert smoe_scale(flat).abs().max() < 1e-9
    spread = torch.tensor([[[1.0], [3.0]]], dtype=torch.float64)
    wider = torch.tensor([[[0.5], [3.5]]], dtype=torch.float64)
    assert smoe_scale(wider) > smoe_scale(spread) > 0


def test_gamma_fit_recovers_known_parameters():
    torch.manual_seed(0)
    k_true, theta_true = 2.5, 0.7
    sample = torch.distributions.Gamma(torch.tensor(k_true), torch.tensor(1 / theta_true)).sample((20000,))
    k, theta = gamma_fit(sample.double()[None])
    assert float(k) == pytest.approx(k_true, rel=0.05) and float(theta) == pytest.approx(theta_true, rel=0.05)
    out = normalise(sample.double()[None, :100], "range")
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0


@pytest.mark.parametrize("options, error, message", [
    ({"norm": "zscore"}, UnknownNameError, "normalisation"),
    ({"cam": "lime"}, UnknownNameError, "unknown cam"),
    ({"weights": [1.0]}, InputError, "weights must be 3"),
    ({"layers": ["classifier"]}, InputError, "feature maps"),
    ({"layers": ["nope"]}, UnknownNameError, "no layer named"),
])
def test_bad_options(options, error, message):
    model, x = make_model(2), make_input(2)
    with pytest.raises(error, match=message):
        medlens.explain(model, x, method="fastcam", **options)
