"""Objectives of feature visualisation: each level against its definition, and composition."""

from __future__ import annotations

import math

import pytest
import torch

from medlens import featurevis as fv
from medlens.core.hooks import capture
from medlens.errors import InputError, TargetError, UnknownNameError
from tests.conftest import make_input, make_model



LAYER = "features.block2.act"


def probe_of(model, x, layers=(LAYER,)):
    """A Probe built by hand, the way render builds it (activations keyed by name and module)."""
    with torch.no_grad():
        with capture(model, layers[0]) as rec:
            out = model(x)
    module = dict(model.named_modules())[layers[0]]
    return fv.Probe(model, x, out, {module: rec.activation, layers[0]: rec.activation}), rec.activation, out


def test_unit_levels_match_their_definitions(spatial_dims):
    model, x = make_model(spatial_dims), make_input(spatial_dims)
    probe, act, out = probe_of(model, x)
    spatial = act.shape[2:]
    centre = tuple(s // 2 for s in spatial)
    torch.testing.assert_close(fv.neuron(LAYER, 2)(probe), act[(slice(None), 2, *centre)])
    corner = tuple(0 for _ in spatial)
    torch.testing.assert_close(fv.neuron(LAYER, 1, corner)(probe), act[(slice(None), 1, *corner)])
    torch.testing.assert_close(fv.channel(LAYER, 3)(probe), act[:, 3].reshape(len(x), -1).mean(1))
    torch.testing.assert_close(fv.layer(LAYER)(probe), (act**2).reshape(len(x), -1).mean(1))
    torch.testing.assert_close(fv.logit(1)(probe), out[:, 1])
    torch.testing.assert_close(fv.probability(2)(probe), torch.softmax(out, 1)[:, 2])
    v = torch.arange(1.0, act.shape[1] + 1, dtype=torch.float64)
    expected = torch.einsum("bc...,c->b...", act, v / v.norm()).reshape(len(x), -1).mean(1)
    torch.testing.assert_close(fv.direction(LAYER, v)(probe), expected)
    # a module works as well as its name
    module = dict(model.named_modules())[LAYER]
    torch.testing.assert_close(fv.channel(module, 3)(probe), act[:, 3].reshape(len(x), -1).mean(1))


def naive_diversity(act: torch.Tensor) -> torch.Tensor:
    """Olah et al. 2017: minus the cosine similarity of Gram matrices, per image, over the others."""
    b = act.shape[0]
    grams = []
    for i in range(b):
        f = act[i].reshape(act.shape[1], -1)
        grams.append((f @ f.T).flatten())
    out = torch.zeros(b, dtype=act.dtype)
    for i in range(b):
        sims = [torch.dot(grams[i], grams[j]) / (grams[i].norm() * grams[j].norm()) for j in range(b) if j != i]
        out[i] = -sum(sims) / len(sims)
    return out


def test_diversity_against_a_naive_reference_and_identical_images():
    model = make_model(2)
    x = make_input(2, batch=4)
    probe, act, _ = probe_of(model, x)
    torch.testing.assert_close(fv.diversity(LAYER)(probe), naive_diversity(act))
    same, _, _ = probe_of(model, x[:1].repeat(3, 1, 1, 1))
    torch.testing.assert_close(fv.diversity(LAYER)(same), -torch.ones(3, dtype=torch.float64))
    one, _, _ = probe_of(model, x[:1])
    assert fv.diversity(LAYER)(one).tolist() == [0.0]


def test_composition_is_arithmetic_per_image():
    model, x = make_model(2), make_input(2)
    probe, act, out = probe_of(model, x)
    a, b, c = fv.channel(LAYER, 0), fv.logit(1), fv.neuron(LAYER, 2)
    combined = a + 2 * b - c / 4 + 1.5
    expected = a(probe) + 2 * b(probe) - c(probe) / 4 + 1.5
    torch.testing.assert_close(combined(probe), expected)
    torch.testing.assert_close((-a)(probe), -a(probe))
    torch.testing.assert_close((3 - a)(probe), 3 - a(probe))
    torch.testing.assert_close(sum([a, b, c])(probe), a(probe) + b(probe) + c(probe))
    assert combined.layers == (LAYER,)  # the union of the layers read, without duplicates
    with pytest.raises(TypeError):
        a * b


def test_per_image_takes_row_i_of_objective_i():
    model, x = make_model(2), make_input(2, batch=3)
    probe, act, out = probe_of(model, x)
    objs = [fv.channel(LAYER, 0), fv.logit(2), fv.channel(LAYER, 5)]
    got = fv.per_image(objs)(probe)
    torch.testing.assert_close(got, torch.stack([objs[i](probe)[i] for i in range(3)]))
    torch.testing.assert_close(fv.channels(LAYER, [4, 1, 0])(probe), act[[0, 1, 2], [4, 1, 0]].reshape(3, -1).mean(1))
    with pytest.raises(InputError, match="2 objectives need a batch of 2"):
        fv.per_image(objs[:2])(probe)


def test_penalties_closed_forms():
    # 1D signal 0, 1, 0, 1: TV = mean |diff| = 1; L1 from 0.5 = 0.5; L2 from 0.5 = 0.5
    x = torch.tensor([[[0.0, 1.0, 0.0, 1.0]]], dtype=torch.float64)
    probe = fv.Probe(None, x, torch.zeros(1, 2))
    assert fv.total_variation()(probe).item() == pytest.approx(1.0)
    assert fv.l1()(probe).item() == pytest.approx(0.5)
    assert fv.l2()(probe).item() == pytest.approx(0.5)
    assert fv.l1(centre=0.0)(probe).item() == pytest.approx(0.5)
    # 2D: a vertical step edge of height 1 in a 4x4 image -> one column of 4 differences out of 12
    img = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    img[..., 2:] = 1
    p2 = fv.Probe(None, img, torch.zeros(1, 2))
    assert fv.total_variation()(p2).item() == pytest.approx(4 / 12)
    const = fv.Probe(None, torch.full((2, 1, 3, 3, 3), 0.3, dtype=torch.float64), torch.zeros(2, 2))
    assert fv.total_variation()(const).tolist() == [0.0, 0.0]


def test_bad_indices_and_names_raise_clear_errors():
    model, x = make_model(2), make_input(2)
    probe, act, _ = probe_of(model, x)
    with pytest.raises(InputError, match="channel 99 does not exist"):
        fv.channel(LAYER, 99)(probe)
    with pytest.raises(InputError, match="position"):
        fv.neuron(LAYER, 0, (99, 0))(probe)
    with pytest.raises(InputError, match="position"):
        fv.neuron(LAYER, 0, (1,))(probe)
    with pytest.raises(TargetError, match="class 7 is out of range"):
        fv.logit(7)(probe)
    with pytest.raises(TargetError):
        fv.probability(3)(probe)
    with pytest.raises(InputError, match="direction has 2 entries"):
        fv.direction(LAYER, [1.0, 0.0])(probe)
    with pytest.raises(InputError, match="non-zero"):
        fv.direction(LAYER, [0.0, 0.0])
    with pytest.raises(UnknownNameError, match="no layer named"):
        fv.channel("nope", 0)(probe)


def test_probability_uses_sigmoid_for_single_output_models():
    out = torch.tensor([[0.3], [-2.0]], dtype=torch.float64)
    probe = fv.Probe(None, torch.zeros(2, 1, 4), out)
    torch.testing.assert_close(fv.probability(1)(probe), torch.sigmoid(out[:, 0]))
    torch.testing.assert_close(fv.probability(0)(probe), 1 - torch.sigmoid(out[:, 0]))
    with pytest.raises(TargetError):
        fv.probability(2)(probe)
    assert math.isclose(fv.logit(0)(probe)[1].item(), -2.0)


# ---- the regression-output objective against closed-form optima ----------------------------


class LinearReadout(torch.nn.Module):
    """``f(x) = <w, x> + b``: a linear model of a neuron's response (a regression output)."""

    def __init__(self, w: torch.Tensor, b: float = 0.3) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(w.clone(), requires_grad=False)
        self.b = b

    def forward(self, x):
        return (x * self.w).flatten(1).sum(1) + self.b  # (B,): one output per input


def test_output_objective_maximises_a_linear_readout_to_its_box_optimum():
    """Over the input box [0, 1], max <w, x> is attained at x = 1 where w > 0 and 0 where w < 0."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(1, 12, 12, generator=gen, dtype=torch.float64)
    model = LinearReadout(w).double()
    images, values = fv.render(model, fv.output(), (2, 1, 12, 12), steps=300, lr=0.1, param="pixel",
                               transforms="none")
    optimum = float(w.clamp_min(0).sum()) + 0.3
    assert values[-1].min() > 0.99 * optimum, (values[-1], optimum)
    sign = (w > 0).double()
    clear = w.abs() > 0.1
    assert ((images[:, 0] - sign).abs()[:, clear[0]] < 0.05).all()


@pytest.mark.parametrize("param", ["pixel", "fourier"])
def test_output_objective_with_an_l2_penalty_reaches_the_closed_form_direction(param):
    """max <w, x> - mu/2 |x - c|^2 has the unique optimum x* = c + w / mu (inside the box here):
    the optimised image equals it, and the image's departure from grey points along w."""
    gen = torch.Generator().manual_seed(1)
    w = 0.02 * torch.randn(1, 16, 16, generator=gen, dtype=torch.float64)
    mu = 0.5
    model = LinearReadout(w).double()
    penalty = fv.Objective(lambda p: (p.image - 0.5).pow(2).flatten(1).sum(1), (), "half squared distance to grey")
    goal = fv.output(0) - (mu / 2) * penalty
    images, _ = fv.render(model, goal, (1, 1, 16, 16), steps=400, lr=0.05, param=param, transforms="none")
    expected = 0.5 + w / mu
    assert float((images[0] - expected).abs().max()) < 2e-3
    d = (images[0] - 0.5).flatten()
    cosine = float(d @ w.flatten() / (d.norm() * w.norm()))
    assert cosine > 0.999


def test_output_objective_reads_columns_and_rejects_missing_ones():
    probe = fv.Probe(None, torch.zeros(2, 1, 4), torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    torch.testing.assert_close(fv.output(1)(probe), torch.tensor([2.0, 4.0]))
    flat = fv.Probe(None, torch.zeros(2, 1, 4), torch.tensor([5.0, 6.0]))
    torch.testing.assert_close(fv.output()(flat), torch.tensor([5.0, 6.0]))
    with pytest.raises(TargetError):
        fv.output(2)(probe)
    with pytest.raises(TargetError):
        fv.output(1)(flat)
