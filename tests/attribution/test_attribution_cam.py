"""Grad-CAM and Grad-CAM++: Captum as oracle, the class activation map, the paper's formula."""

import pytest
import torch

import medlens
from medlens.attribution.cam import default_cam_layer
from medlens.errors import InputError, UnknownNameError
from tests.conftest import make_input, make_model



@pytest.mark.parametrize("layer", ["features.block3.conv", "features.block2.act"])
def test_gradcam_equals_captum_layer_gradcam(spatial_dims, layer):
    captum_attr = pytest.importorskip("captum.attr")
    model, x = make_model(spatial_dims), make_input(spatial_dims)
    ours = medlens.explain(model, x, target=[0, 2, 1], method="gradcam", layer=layer, upsample=False).values
    module = dict(model.named_modules())[layer]
    theirs = captum_attr.LayerGradCam(model, module).attribute(x, target=[0, 2, 1], relu_attributions=True)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-12)


def test_default_layer_is_the_rectified_output_of_the_last_conv(spatial_dims):
    model, x = make_model(spatial_dims), make_input(spatial_dims)
    assert default_cam_layer(model) is model.features.block3.act
    by_default = medlens.explain(model, x, target=1, method="gradcam", upsample=False).values
    by_module = medlens.explain(model, x, target=1, method="gradcam", upsample=False,
                                layer=model.features.block3.act).values
    torch.testing.assert_close(by_default, by_module, rtol=0, atol=0)


def test_default_layer_without_convolution_is_an_error():
    x = make_input(2)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(24 * 24, 2)).double()
    with pytest.raises(UnknownNameError, match="no convolution"):
        medlens.explain(model, x, method="gradcam")


def test_gradient_stops_at_the_layer():
    # a layer that is not on the path to the score is named as the problem
    model, x = make_model(2), make_input(2)
    unused = torch.nn.Conv2d(1, 1, 1).double()
    model.unused = unused
    with pytest.raises(InputError, match="not run on the way"):
        medlens.explain(model, x, method="gradcam", layer="unused")


def test_gradcam_of_gap_linear_network_is_the_class_activation_map(spatial_dims):
    # CNN ends in ReLU -> global average pool -> linear: Grad-CAM = ReLU(CAM) / n_locations
    model, x = make_model(spatial_dims), make_input(spatial_dims)
    layer = "features.block3.act"
    attr = medlens.explain(model, x, target=[2, 1, 0], method="gradcam", layer=layer, upsample=False).values
    with torch.no_grad():
        acts = model.features(x)  # (B, K, *layer_spatial)
    w = model.classifier.weight.detach()[[2, 1, 0]]  # (B, K)
    cam = torch.einsum("bk,bk...->b...", w, acts)[:, None]
    n_locations = acts[0, 0].numel()
    torch.testing.assert_close(attr, torch.relu(cam) / n_locations, rtol=1e-10, atol=1e-12)


def test_upsample_brings_the_map_to_the_input_size(spatial_dims):
    model, x = make_model(spatial_dims), make_input(spatial_dims)
    for method in ("gradcam", "gradcam_pp"):
        small = medlens.explain(model, x, target=0, method=method, upsample=False).values
        big = medlens.explain(model, x, target=0, method=method).values
        assert big.shape == (3, 1, *x.shape[2:]) and (big >= 0).all()
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[spatial_dims]
        expected = torch.nn.functional.interpolate(small, size=x.shape[2:], mode=mode, align_corners=False)
        torch.testing.assert_close(big, expected)


def naive_gradcam_pp(head, acts, cls, checked=4):
    """Grad-CAM++ straight from the paper (eq. 19), one channel and location at a time.

    ``head`` maps the layer activations ``(1, K, *s)`` to class scores. With ``Y = exp(S)`` and
    S piecewise linear in A (the paper's assumption, true of ReLU / max-pool / linear heads),
    the second and third derivatives are ``exp(S) g^2`` and ``exp(S) g^3`` (eqs. 17-18); this is
    verified with autograd at a few locations before use.
    """
    a = acts.clone().requires_grad_(True)
    y = torch.exp(head(a)[0, cls])
    (d1,) = torch.autograd.grad(y, a, create_graph=True)
    flat = d1.reshape(-1)
    for i in torch.randperm(flat.numel(), generator=torch.Generator().manual_seed(0))[:checked].tolist():
        (h,) = torch.autograd.grad(flat[i], a, create_graph=True)
        (t,) = torch.autograd.grad(h.reshape(-1)[i], a, retain_graph=True, allow_unused=True)
        g = float(flat[i]) / float(y)
        assert float(h.reshape(-1)[i]) == pytest.approx(float(y) * g**2, rel=1e-9, abs=1e-15)
        third = 0.0 if t is None else float(t.reshape(-1)[i])
        assert third == pytest.approx(float(y) * g**3, rel=1e-9, abs=1e-15)
    y = float(y)
    d1 = d1.detach()[0]
    act = acts[0]
    weights = []
    for c in range(act.shape[0]):
        total_a = float(act[c].sum())
        w = 0.0
        for dy in d1[c].reshape(-1).tolist():
            second, third = dy**2 / y, dy**3 / y**2  # exp(S) g^2 and exp(S) g^3 with g = dy / y
            den = 2 * second + total_a * third
            alpha = second / den if den != 0 else 0.0
            w += alpha * max(dy, 0.0)
        weights.append(w)
    weights = torch.tensor(weights, dtype=act.dtype).view(-1, *[1] * (act.ndim - 1))
    return torch.relu((weights * act).sum(0, keepdim=True)), y


def test_gradcam_pp_matches_the_papers_formula(spatial_dims):
    model = make_model(spatial_dims)
    x = make_input(spatial_dims, batch=2)
    ours = medlens.explain(model, x, target=[1, 2], method="gradcam_pp", layer="features.block2.act",
                           upsample=False).values
    block2 = model.features.block2
    head = torch.nn.Sequential(block2.pool, model.features.block3, model.pool, torch.nn.Flatten(), model.classifier)
    with torch.no_grad():
        acts = block2.act(block2.norm(block2.conv(model.features.block1(x))))
    for b, cls in enumerate([1, 2]):
        expected, y = naive_gradcam_pp(head, acts[b : b + 1], cls)
        # the paper's weights carry the constant exp(S); medlens leaves it out
        torch.testing.assert_close(ours[b] * y, expected, rtol=1e-8, atol=1e-12)


def test_per_sample_targets_in_a_batch():
    model, x = make_model(2), make_input(2)
    batch = medlens.explain(model, x, target=[0, 2, 1], method="gradcam_pp").values
    for i, cls in enumerate([0, 2, 1]):
        one = medlens.explain(model, x[i : i + 1], target=cls, method="gradcam_pp").values
        torch.testing.assert_close(batch[i : i + 1], one)


def test_bad_layers():
    model, x = make_model(2), make_input(2)
    with pytest.raises(UnknownNameError, match="no layer named"):
        medlens.explain(model, x, method="gradcam", layer="features.block9")
    with pytest.raises(InputError, match="channels and at least one spatial"):
        medlens.explain(model, x, method="gradcam", layer="classifier")
    other = torch.nn.Conv2d(1, 1, 3)
    with pytest.raises(UnknownNameError, match="not part of the model"):
        medlens.explain(model, x, method="gradcam", layer=other)


def test_a_coarse_cam_grid_is_noted_in_the_result():
    from medlens.attribution.cam import grid_note

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, stride=4, padding=1), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten(), torch.nn.Linear(4, 2)).eval()
    result = medlens.explain(model, torch.randn(1, 1, 16, 16, 12), target=1, method="gradcam")
    assert result.values.shape == (1, 1, 16, 16, 12)
    assert result.extras["note"].startswith("the CAM layer's grid is 4x4x3 on a 16x16x12 input: each cell spans 4x4x4")
    assert grid_note((7, 7), (224, 224)) is None  # the usual 2D grid is not flagged
    assert grid_note((2, 8), (2, 64)) is None  # an axis the input itself does not extend
    assert "grid is 4x8" in grid_note((4, 8), (64, 64))
