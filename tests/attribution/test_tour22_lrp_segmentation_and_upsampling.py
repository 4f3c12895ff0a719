"""LRP of a segmentation score (a region's summed channel) and through transposed convolutions
(a UNet's up-sampling path): the map sums to the score with LRP-0 on a bias-free model, and a
transposed convolution gets the convolutions' rule, as in Zennit."""

import copy

import pytest
import torch
from torch import nn

import medlens
from medlens.core.targets import ReducedOutput
from tests.attribution.lrp_models import import_zennit, zennit_composite, zennit_lrp, zero_biases


def _segmenter() -> nn.Module:
    """Encoder, a transposed convolution back to the input grid, a 1x1 head of two channels."""
    torch.manual_seed(0)
    return zero_biases(nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(6, 4, 3, stride=2, padding=1, output_padding=1), nn.ReLU(), nn.Conv2d(4, 2, 1),
    ).double().eval())


def _region() -> torch.Tensor:
    mask = torch.zeros(12, 12, dtype=torch.float64)
    mask[3:8, 4:10] = 1
    return mask


def _lrp0(model, x, target):
    return medlens.explain(model, x, target=target, method="lrp", composite="epsilon", epsilon=1e-12).values


def test_a_callable_region_target_gives_relevance_summing_to_the_region_score():
    model, mask = _segmenter(), _region()
    x = torch.randn(2, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    score = (model(x)[:, 1] * mask).flatten(1).sum(1).detach()
    values = _lrp0(model, x, lambda out: (out[:, 1] * mask).flatten(1).sum(1))
    # each of the 30 summed outputs was given the whole score: 30 times it
    torch.testing.assert_close(values.flatten(1).sum(1), score, rtol=1e-6, atol=1e-9)


def test_the_command_lines_region_target_gives_the_same_map():
    model, mask = _segmenter(), _region()
    x = torch.randn(2, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    wrapped = _lrp0(ReducedOutput(model, 1, mask), x, 0)  # what --target-class 1 --target-mask gives
    direct = _lrp0(model, x, lambda out: (out[:, 1] * mask).flatten(1).sum(1))
    # the wrapper's sum passed every one of the 144 outputs the whole score, those outside the mask too
    torch.testing.assert_close(wrapped, direct, rtol=1e-6, atol=1e-9)


def test_a_class_logit_still_gives_relevance_summing_to_the_logit():
    torch.manual_seed(0)
    model = zero_biases(nn.Sequential(nn.Conv1d(1, 4, 5, padding=2), nn.ReLU(), nn.Flatten(), nn.Linear(64, 3))
                        ).double().eval()
    x = torch.randn(3, 1, 16, dtype=torch.float64)
    values = _lrp0(model, x, [0, 1, 2])
    torch.testing.assert_close(values.flatten(1).sum(1), model(x).detach().diagonal(), rtol=1e-6, atol=1e-9)


def test_relevance_is_conserved_through_a_transposed_convolution():
    model = _segmenter()
    x = torch.randn(1, 1, 12, 12, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    values = _lrp0(model, x, lambda out: out[:, 0].flatten(1).sum(1))
    # its gradient, kept, scaled the relevance by the layer's weights
    torch.testing.assert_close(values.sum(), model(x)[:, 0].sum().detach(), rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("composite", ["epsilon-plus", "epsilon-alpha2-beta1", "epsilon-gamma-box"])
@pytest.mark.parametrize("groups", [1, 2])
def test_transposed_convolutions_equal_zennit(composite, groups):
    zennit = import_zennit()
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, stride=2, padding=1), nn.ReLU(),
        nn.ConvTranspose2d(4, 4, 3, stride=2, padding=1, output_padding=1, groups=groups), nn.ReLU(),
        nn.Conv2d(4, 2, 1), nn.Flatten(), nn.Linear(128, 3),
    ).double().eval()
    x = torch.randn(3, 1, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    bounds = {"low": -4.0, "high": 4.0} if composite == "epsilon-gamma-box" else {}
    ours = medlens.explain(model, x, target=[0, 1, 2], method="lrp", composite=composite, **bounds).values
    theirs = zennit_lrp(copy.deepcopy(model), x, [0, 1, 2], zennit_composite(zennit, composite, canonize=False))
    assert ((ours - theirs).abs().max() / theirs.abs().max()).item() < 1e-10
