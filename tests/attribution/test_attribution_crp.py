"""Concept relevance propagation: conditioning identities and a known answer; relevance
maximisation (reference cases); MONAI's DenseNet and ResNet run under every composite."""

import pytest
import torch
from torch import nn

import medlens
from medlens.attribution.lrp import (
    composite_named,
    conditional_relevance,
    reference_cases,
    reference_cases_of,
)
from medlens.core.hooks import count_hooks
from tests.attribution.lrp_models import ResNet, cnn3d, vgg, zero_biases

COMPOSITES = ["epsilon-plus", "epsilon-alpha2-beta1", "epsilon-plus-flat", "epsilon-alpha2-beta1-flat",
              "epsilon-gamma-box", "epsilon"]


def _input(shape, seed=1):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


CASES = {  # model, input, layer (a folded conv, a ruled activation, a container without a rule)
    "resnet-folded-conv": (lambda: ResNet(2), (2, 1, 16, 16), "layer1.conv2", 6),
    "resnet-block": (lambda: ResNet(2), (2, 1, 16, 16), "layer1", 6),
    "vgg1d-relu": (lambda: vgg(1), (2, 1, 32), "3", 8),
    "cnn3d-conv": (cnn3d, (2, 1, 8, 8, 8), "4", 6),
}


@pytest.mark.parametrize("case", list(CASES))
def test_all_channels_is_lrp_and_disjoint_sets_add_up(case):
    make, shape, layer, n = CASES[case]
    model, x = make(), _input(shape)
    full = medlens.explain(model, x, target=[0, 2], method="lrp").values
    every = conditional_relevance(model, x, [0, 2], layer=layer, channels=range(n))
    torch.testing.assert_close(every, full, rtol=1e-10, atol=1e-14)
    low = conditional_relevance(model, x, [0, 2], layer=layer, channels=range(n // 2))
    high = conditional_relevance(model, x, [0, 2], layer=layer, channels=range(n // 2, n))
    # what bypasses the layer (a residual block's skip path around "layer1.conv2") is in every
    # conditional map: it is the map conditioned on no channel, zero for a layer all relevance
    # passes through
    bypass = conditional_relevance(model, x, [0, 2], layer=layer, channels=[])
    torch.testing.assert_close(low + high - bypass, full, rtol=1e-10, atol=1e-14)
    if case != "resnet-folded-conv":
        assert bypass.abs().max() == 0
    assert not torch.allclose(low, full) and count_hooks(model) == 0


def two_concepts() -> nn.Module:
    """Channel k of layer "0" copies input channel k; the logit of class 0 is x0 + 2 x1 (means)."""
    model = nn.Sequential(nn.Conv2d(2, 2, 1, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(2, 2, bias=False)).double()
    with torch.no_grad():
        model[0].weight.copy_(torch.eye(2).view(2, 2, 1, 1))
        model[4].weight.copy_(torch.tensor([[1.0, 2.0], [0.5, 0.5]]))
    return model.eval()


def two_squares(brightness=(1.0, 1.0)) -> torch.Tensor:
    x = torch.zeros(1, 2, 8, 8, dtype=torch.float64)
    x[0, 0, :3, :3] = brightness[0]  # concept 0: the top-left square
    x[0, 1, 5:, 5:] = brightness[1]  # concept 1: the bottom-right square
    return x


@pytest.mark.parametrize("composite", ["epsilon-plus", "epsilon"])
def test_known_answer_channel_reads_its_region(composite):
    model, x = two_concepts(), two_squares()
    for channel, square, weight in ((0, (0, slice(0, 3), slice(0, 3)), 1.0), (1, (1, slice(5, 8), slice(5, 8)), 2.0)):
        # "epsilon" with LRP-0's tiny stabiliser (its default, 0.25, absorbs relevance)
        rules = composite_named(composite, epsilon=1e-6)
        r = conditional_relevance(model, x, 0, layer="0", channels=channel, composite=rules)[0]
        inside = torch.zeros_like(r, dtype=torch.bool)
        inside[square] = True
        assert r[~inside].abs().max() == 0
        # up to the rules' stabiliser (1e-6 added to denominators of size ~0.1)
        torch.testing.assert_close(r.sum(), torch.tensor(weight * 9 / 64, dtype=r.dtype), rtol=1e-4, atol=0)
    crp = medlens.explain(model, x, target=0, method="crp", layer="0")
    assert crp.extras["channels"] == [[1]]  # channel 1 carries 18/64 of the logit, channel 0 9/64


def test_reference_cases_rank_by_concept_relevance():
    model = two_concepts()
    levels = [0.2, 3.0, 1.0, 0.5, 2.0]
    data = torch.cat([two_squares((b, 1.0)) for b in levels])
    found = reference_cases(model, data, "0", channel=0, k=3, target=0)
    assert found.indices.tolist() == [1, 4, 2]
    expected = torch.tensor([3.0, 2.0, 1.0], dtype=torch.float64) * 9 / 64
    torch.testing.assert_close(found.relevance, expected, rtol=1e-4, atol=0)
    assert found.maps.shape == (3, 2, 8, 8) and found.maps[:, 1].abs().max() == 0
    assert found.layer == "0" and count_hooks(model) == 0


def test_reference_cases_of_several_channels_are_the_naive_argmax():
    # without biases, z+ conserves relevance from the layer down to the input: a case's
    # conditional map, computed alone, sums to the concept's relevance at the layer
    model, data = zero_biases(vgg(2)), _input((7, 1, 16, 16), seed=4)
    channels, k = [0, 3, 6], 3
    found = reference_cases_of(model, data, "5", channels, k, target=1, batch_size=2)
    for c, cases in zip(channels, found):
        naive = torch.stack([conditional_relevance(model, data[i:i + 1], 1, layer="5", channels=[c]).sum()
                             for i in range(len(data))])
        torch.testing.assert_close(cases.all_relevance, naive, rtol=1e-4, atol=1e-8)  # up to the 1e-6 stabiliser
        order = sorted(range(len(data)), key=lambda i: -float(naive[i]))[:k]
        assert cases.channel == c and cases.indices.tolist() == order
        torch.testing.assert_close(cases.relevance, naive[order], rtol=1e-4, atol=1e-8)
        alone = conditional_relevance(model, data[order], 1, layer="5", channels=[c])
        torch.testing.assert_close(cases.maps, alone, rtol=1e-9, atol=1e-14)
    assert reference_cases_of(model, data, "5", [], 3) == [] and count_hooks(model) == 0


def _monai():
    return pytest.importorskip("monai.networks.nets")


def test_every_composite_runs_on_monai_densenet121_2d():
    nets = _monai()
    torch.manual_seed(0)
    model = nets.DenseNet121(spatial_dims=2, in_channels=1, out_channels=3).eval()
    x = torch.randn(1, 1, 64, 64)
    inplace = [m for m in model.modules() if getattr(m, "inplace", False)]
    for composite in COMPOSITES:
        values = medlens.explain(model, x, target=1, method="lrp", composite=composite).values
        assert values.shape == x.shape and torch.isfinite(values).all() and values.abs().sum() > 0
    assert count_hooks(model) == 0 and all(m.inplace for m in inplace)
    # z+ keeps MONAI's in-place activations (no rule reuses a convolution's output): same maps
    with_inplace = medlens.explain(model, x, target=1, method="lrp", composite="epsilon-plus").values
    for m in inplace:
        m.inplace = False
    torch.testing.assert_close(with_inplace, medlens.explain(model, x, target=1, method="lrp").values,
                               rtol=0, atol=0)
    for m in inplace:
        m.inplace = True
    concept = conditional_relevance(model, x, 1, layer="features.denseblock4.denselayer16.layers.conv2", channels=[0, 1])
    assert torch.isfinite(concept).all()


@pytest.mark.slow
def test_every_composite_runs_on_monai_resnet18_3d():
    nets = _monai()
    torch.manual_seed(0)
    model = nets.resnet18(spatial_dims=3, n_input_channels=1, num_classes=3).eval()
    x = torch.randn(1, 1, 32, 32, 32)
    for composite in COMPOSITES:
        values = medlens.explain(model, x, target=2, method="lrp", composite=composite).values
        assert values.shape == x.shape and torch.isfinite(values).all()
    assert count_hooks(model) == 0
    # MONAI's blocks add the shortcut with "out += residual": the residual canonizer splits all 8
    from medlens.attribution.lrp.canonizers import residual_sums

    with residual_sums(model) as mode:
        model(x.requires_grad_(True))
    assert mode.count == 8


def test_crp_default_channel_from_channel_sums_chunk_by_chunk(monkeypatch):
    """crp's default channel (each case's most relevant one) is found from channel sums made as
    each chunk's layer relevance arrives: the same channels and maps as the argmax over the whole
    batch's layer relevance, and no more than one chunk of the layer's maps is ever held."""
    from medlens.attribution.lrp import method
    from medlens.core.targets import Target

    model, x = vgg(2), _input((5, 1, 16, 16), seed=3)
    target = Target(torch.tensor([1] * 5))
    full = method.relevance(model, x, target, composite_named("epsilon-plus"), layer=model[5])  # (5, C, h, w)
    naive = full.flatten(2).sum(2).argmax(1)
    seen = []
    real = method.concept_relevance

    def spy(values):
        seen.append(tuple(values.shape))
        return real(values)

    monkeypatch.setattr(method, "concept_relevance", spy)
    result = medlens.explain(model, x, target=1, method="crp", layer="5", batch_size=2)
    assert result.extras["channels"] == [[int(c)] for c in naive]
    assert seen and all(s[0] <= 2 and len(s) == full.ndim for s in seen)  # chunks of the layer's maps, reduced
    monkeypatch.undo()
    explicit = torch.zeros(5, full.shape[1], dtype=x.dtype)
    explicit[torch.arange(5), naive] = 1
    alone = conditional_relevance(model, x, 1, layer="5", channels=explicit)
    torch.testing.assert_close(result.values, alone, rtol=1e-12, atol=0)
