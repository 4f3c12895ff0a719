"""CRP's concept functions (``conditional_relevance``, ``reference_cases_of``) handed the model
back with one training flag for all its modules (``model.train(was_training)``): a part the user
had frozen in eval mode (a BatchNorm backbone) came back in training mode. Every module's own flag
is restored now, also after an error."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medlens.attribution.lrp import conditional_relevance, reference_cases_of
from medlens.errors import InputError


def _model() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 3)).train()
    model[1].eval()  # the user froze the normalisation
    return model


def _flags(model: nn.Module) -> list[bool]:
    return [m.training for m in model.modules()]


def test_conditional_relevance_and_reference_cases_restore_each_flag():
    model, x = _model(), torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    flags = _flags(model)
    conditional_relevance(model, x, 0, layer="2", channels=[0, 1])
    assert _flags(model) == flags
    reference_cases_of(model, x, "2", [0, 3], k=2)
    assert _flags(model) == flags
    with pytest.raises(InputError):
        reference_cases_of(model, x, "2", [9], k=2)  # no channel 9
    assert _flags(model) == flags
