"""render: a planted detector is recovered, every objective rises, the model is left untouched."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from medlens import featurevis as fv
from medlens.core.hooks import count_hooks
from medlens.errors import InputError, TargetError, UnknownNameError
from medlens.featurevis.relu import RedirectedReLU, redirected_relu_gradients
from medlens.core.random import generator
from medlens.models import CNN
from tests.conftest import SHAPES, make_model
from tests.featurevis.planted import best_phase_correlation, planted_detector



LAYER = "features.block2.act"


# ---- a planted oriented detector -----------------------------------------------------------

PERIOD, THETA, KERNEL, SIZE = 5.5, math.radians(30), 11, 40


def local_correlation(img: torch.Tensor, theta: float = THETA, win: int = 16) -> float:
    """Best-phase correlation with the planted pattern (:func:`tests.featurevis.planted.best_phase_correlation`)."""
    return best_phase_correlation(img, PERIOD, theta, win)


@pytest.fixture(scope="module")
def planted():
    return planted_detector(PERIOD, THETA, KERNEL, SIZE)


@pytest.mark.parametrize("param, threshold", [("pixel", 0.55), ("fourier", 0.35)])
def test_a_planted_oriented_detector_is_recovered(planted, param, threshold):
    objs = [fv.channel("features.block1.act", 0)] * 3 + [fv.channel("features.block1.act", 1)]
    images, values = fv.render(planted, objs, (4, 1, SIZE, SIZE), steps=96, param=param)
    found = [local_correlation(images[i, 0]) for i in range(3)]
    # measured: pixel 0.64-0.87, Fourier 0.42-0.53 (its 1/f preconditioning favours coarse
    # structure, so it converges more slowly on a fine first-layer grating); a random or
    # unrelated image scores about 0.05-0.12
    assert min(found) > threshold, found
    assert local_correlation(images[0, 0], THETA + math.pi / 2) < 0.12  # the orthogonal orientation
    assert local_correlation(images[3, 0]) < 0.2  # another channel does not draw the planted pattern
    assert values[-8:, :3].mean() > 3 * values[:8, :3].mean()


# ---- every objective rises ---------------------------------------------------------------


PRE = "features.block2.norm"  # before the ReLU: every unit has a gradient on the grey start


def responsive_model(spatial_dims: int) -> CNN:
    """A random CNN whose outputs respond to its input (the conftest models, with their small
    default weights and pooling, move their logits by ~1e-4 over a whole optimisation)."""
    torch.manual_seed(0)
    shape = SHAPES[spatial_dims]
    model = CNN(spatial_dims, shape[0], 3, widths=(8, 6), input_shape=shape).double()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)):
                m.weight.mul_(3.0)
    return model.eval()


def objective_kinds() -> dict[str, fv.Objective]:
    return {
        "neuron": fv.neuron(PRE, 1),
        "channel": fv.channel(PRE, 2),
        "layer": fv.layer(PRE),
        "logit": fv.logit(0),
        "probability": fv.probability(2),
        "direction": fv.direction(PRE, torch.linspace(-1, 1, 6)),
        "diversity": fv.channel(PRE, 0) + 2.0 * fv.diversity(PRE),
        "penalised": fv.channel(PRE, 3) - 0.1 * fv.total_variation() - 0.1 * fv.l1() - 0.1 * fv.l2(),
    }


@pytest.mark.parametrize("param", ["fourier", "pixel"])
def test_every_objective_kind_rises(spatial_dims, param):
    model = responsive_model(spatial_dims)
    kinds = objective_kinds()
    objectives = list(kinds.values())
    shape = (len(kinds), *SHAPES[spatial_dims])
    steps = 40
    # all kinds at once, objective i on image i
    images, values = fv.render(model, objectives, shape, steps=steps, lr=0.1, param=param, seed=1)
    assert values.shape == (steps, len(kinds))
    # the starting image is the parameterisation's initial state for this seed
    cls = {"fourier": fv.FourierImage, "pixel": fv.PixelImage}[param]
    start_image = cls(shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)().detach()
    start = fv.objective_values(model, objectives, start_image)
    final = fv.objective_values(model, objectives, images)
    early, late = values[: steps // 3].mean(0), values[-steps // 3 :].mean(0)
    for i, name in enumerate(kinds):
        assert final[i] > start[i] + 0.02 * abs(start[i]) + 1e-3, (name, start[i], final[i])
        assert late[i] > early[i], (name, values[:, i])


def naive_ascent(model, objective, init_field, steps, lr):
    """Gradient ascent written from the definition, one image alone: x = sigmoid(field),
    Adam on the field, no transforms."""
    from medlens.core.hooks import capture

    field = init_field.clone().requires_grad_(True)
    opt = torch.optim.Adam([field], lr=lr)
    for _ in range(steps):
        x = torch.sigmoid(field)
        with capture(model, PRE, detach=False) as rec:
            out = model(x)
        probe = fv.Probe(model, x, out, {PRE: rec.activation})
        (grad,) = torch.autograd.grad(-objective(probe).sum(), field)
        field.grad = grad
        opt.step()
    return torch.sigmoid(field).detach()


def test_a_batch_of_objectives_equals_each_objective_optimised_alone():
    model = make_model(2)
    objs = [fv.channel(PRE, 0), fv.channel(PRE, 4), fv.logit(2)]
    shape = (3, *SHAPES[2])
    images, _ = fv.render(model, objs, shape, steps=10, lr=0.1, param="pixel", transforms="none",
                          seed=5, redirect_relu=False)
    init = fv.PixelImage(shape, generator=generator(5, "render"), dtype=torch.float64).pixels.detach()
    for i, objective in enumerate(objs):
        alone = naive_ascent(model, objective, init[i : i + 1], 10, 0.1)
        torch.testing.assert_close(images[i : i + 1], alone)


# ---- reproducibility and side effects -----------------------------------------------------


def snapshot(model: nn.Module):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            {n: p.requires_grad for n, p in model.named_parameters()})


def test_same_seed_same_image_and_the_model_is_untouched(spatial_dims):
    model = make_model(spatial_dims)
    model.features.block1.conv.weight.requires_grad_(False)  # a user's frozen layer stays frozen
    model.train()  # render must not update batch-norm statistics
    state, flags = snapshot(model)
    shape = (2, *SHAPES[spatial_dims])
    a = fv.render(model, fv.channel(LAYER, 0), shape, steps=6, seed=3)
    b = fv.render(model, fv.channel(LAYER, 0), shape, steps=6, seed=3)
    c = fv.render(model, fv.channel(LAYER, 0), shape, steps=6, seed=4)
    torch.testing.assert_close(a.images, b.images, rtol=0, atol=0)
    torch.testing.assert_close(a.values, b.values, rtol=0, atol=0)
    assert not torch.allclose(a.images, c.images)
    after, after_flags = snapshot(model)
    for k in state:
        assert torch.equal(state[k], after[k]), k
    assert after_flags == flags
    assert all(p.grad is None for p in model.parameters())
    assert model.training and all(m.training for m in model.modules())
    assert count_hooks(model) == 0
    assert a.images.dtype == torch.float64 and not a.images.requires_grad


def test_failures_leave_no_hooks_and_raise_clear_errors():
    model = make_model(2)
    shape = (2, *SHAPES[2])
    with pytest.raises(InputError, match="channel 50 does not exist"):
        fv.render(model, fv.channel(LAYER, 50), shape, steps=2)
    assert count_hooks(model) == 0
    with pytest.raises(TargetError):
        fv.render(model, fv.logit(9), shape, steps=2)
    assert count_hooks(model) == 0
    with pytest.raises(UnknownNameError, match="no layer named"):
        fv.render(model, fv.channel("features.nope", 0), shape, steps=2)
    with pytest.raises(InputError, match="does not fit the model"):
        fv.render(model, fv.logit(0), (2, 1, 8, 8), steps=2)
    with pytest.raises(InputError, match="3 objectives need a batch of 3"):
        fv.render(model, [fv.logit(0)] * 3, shape, steps=2)
    with pytest.raises(UnknownNameError, match="parameterisation"):
        fv.render(model, fv.logit(0), shape, steps=2, param="wavelet")
    with pytest.raises(UnknownNameError, match="transforms"):
        fv.render(model, fv.logit(0), shape, steps=2, transforms="strong")
    with pytest.raises(InputError, match="steps"):
        fv.render(model, fv.logit(0), shape, steps=0)
    with pytest.raises(InputError, match="lr"):
        fv.render(model, fv.logit(0), shape, steps=2, lr=-1.0)
    assert count_hooks(model) == 0


def test_render_works_inside_inference_mode_and_with_a_module_layer():
    model = make_model(1)
    layer = model.features.block2.act
    with torch.inference_mode():
        images, values = fv.render(model, fv.channel(layer, 0), (2, *SHAPES[1]), steps=4)
    assert values.shape == (4, 2) and torch.isfinite(images).all()


def test_input_range_is_respected():
    model = make_model(2)
    images, _ = fv.render(model, fv.logit(1), (2, *SHAPES[2]), steps=30, lr=0.5, input_range=(-2.0, -1.0))
    assert images.min() >= -2.0 and images.max() <= -1.0


def test_pad_for_fully_convolutional_models_and_blur_every_smooths():
    model = make_model(2)
    model.input_shape = None  # GAP head: any size works
    shape = (2, *SHAPES[2])
    plain = fv.render(model, fv.channel(LAYER, 1), shape, steps=20, param="pixel", transforms=[fv.pad(4)])
    assert plain.images.shape == shape
    blurred = fv.render(model, fv.channel(LAYER, 1), shape, steps=20, param="pixel",
                        transforms=[fv.pad(4), fv.blur_every(2, 1.5)])
    tv = fv.total_variation()
    assert fv.objective_values(model, tv, blurred.images).mean() < 0.7 * fv.objective_values(model, tv, plain.images).mean()


def test_decorrelated_multichannel_render():
    model = make_model(1)  # two input channels
    samples = torch.randn(16, *SHAPES[1], generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    samples[:, 1] = 0.9 * samples[:, 0] + 0.1 * samples[:, 1]
    images, values = fv.render(model, fv.channel(LAYER, 0), (2, *SHAPES[1]), steps=16, decorrelate=samples)
    assert values[-3:].mean() > values[:3].mean()


# ---- redirected ReLU gradients -------------------------------------------------------------


def test_redirected_relu_passes_only_upward_gradient_for_silent_images():
    x = torch.tensor([[-1.0, -2.0, 3.0], [-1.0, -0.5, -4.0]], dtype=torch.float64, requires_grad=True)
    out = RedirectedReLU.apply(x)
    torch.testing.assert_close(out, x.clamp_min(0))
    grad_out = torch.tensor([[-1.0, 2.0, -3.0], [-1.0, 2.0, -3.0]], dtype=torch.float64)
    (grad,) = torch.autograd.grad(out, x, grad_out)
    # row 0 gets ordinary gradient through its positive unit: plain ReLU gradient
    # row 1 is silent: keep the components that raise x (negative loss gradient), block the rest
    expected = torch.tensor([[0.0, 0.0, -3.0], [-1.0, 0.0, -3.0]], dtype=torch.float64)
    torch.testing.assert_close(grad, expected)


def test_silent_units_are_reached_only_with_redirection():
    torch.manual_seed(0)
    model = CNN(2, 1, 2, widths=(4,), input_shape=(1, 12, 12)).double().eval()
    with torch.no_grad():
        # a local-mean detector that fires only above 0.7: silent on the grey (0.5) start
        model.features.block1.conv.weight[0] = 1 / 9
        model.features.block1.conv.bias[0] = -0.7
    shape = (1, 1, 12, 12)
    stuck = fv.render(model, fv.channel("features.block1.act", 0), shape, steps=20, redirect_relu=False)
    moved = fv.render(model, fv.channel("features.block1.act", 0), shape, steps=20)
    assert stuck.values.abs().max() == 0
    assert moved.values[-1, 0] > 0
    with redirected_relu_gradients(model) as n:
        assert n == 1 and count_hooks(model) == 1
    assert count_hooks(model) == 0
