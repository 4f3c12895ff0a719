"""A record with one flat lead (all zeros on lead 2, a normal ECG on lead 1) was called unlike the
training data by its distance only: no reason named the lead. A channel that is constant while every
training case varied in it (the reference's per-channel ``least_std`` above zero) is now named."""

from __future__ import annotations

import pytest
import torch

from medlens.evaluation.familiarity import familiarity, familiarity_reference
from medlens.models.cnn import CNN


def _two_leads(n: int, seed: int) -> torch.Tensor:
    """``(n, 2, 140)``: two sine leads of varying frequency and phase."""
    g = torch.Generator().manual_seed(seed)
    t = torch.linspace(0, 6.28, 140)
    f = 1 + 2 * torch.rand(n, 2, 1, generator=g)
    phase = torch.rand(n, 2, 1, generator=g)
    return torch.sin(t * f + phase)


@pytest.fixture(scope="module")
def two_lead_model():
    torch.manual_seed(0)
    model = CNN(1, 2, 2, widths=(4, 8), input_shape=(2, 140)).eval()
    return model, familiarity_reference(model, _two_leads(30, 0), _two_leads(10, 1))


def test_the_flat_lead_is_named_and_an_older_reference_gives_no_such_reason(two_lead_model):
    model, reference = two_lead_model
    case = _two_leads(1, 2)
    case[0, 1] = 0.0
    named = familiarity(model, case, reference, channels=["MLII", "V5"])
    assert named.unlike is True
    assert any(r.startswith("lead 2 (V5) is flat") for r in named.reasons), named.reasons
    assert any(r.startswith("lead 2 is flat") for r in familiarity(model, case, reference).reasons)
    older = {k: v for k, v in reference.items() if k != "least_std"}
    assert not any("is flat" in r for r in familiarity(model, case, older, channels=["MLII", "V5"]).reasons)
    both_vary = _two_leads(1, 3)
    assert not any("is flat" in r for r in familiarity(model, both_vary, reference).reasons)


def test_a_flat_channel_of_an_image_is_named_unless_training_had_it_flat():
    torch.manual_seed(0)
    model = CNN(2, 3, 2, widths=(4, 8), input_shape=(3, 8, 8)).eval()
    g = torch.Generator().manual_seed(0)
    train = torch.nn.functional.avg_pool2d(torch.rand(40, 3, 10, 10, generator=g), 3, 1)
    case = train[:1].clone()
    case[0, 1] = 0.5
    found = familiarity(model, case, familiarity_reference(model, train[:30], train[30:]))
    assert any(r.startswith("channel 2 is flat") for r in found.reasons), found.reasons
    train[:, 1] = 0.5  # the training images never varied in channel 2 either
    same = familiarity(model, case, familiarity_reference(model, train[:30], train[30:]))
    assert not any("is flat" in r for r in same.reasons)
