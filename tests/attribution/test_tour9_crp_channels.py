"""CRP's ``channels`` given as something other than indices (a string from a form, a ragged
list, a None in it) raised torch's ``ValueError: too many dimensions 'str'`` or a TypeError; it is one line."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import medlens
from medlens.errors import InputError


@pytest.mark.parametrize("channels", ["a", [[0], [1, 2]], [None]])
def test_channels_that_are_not_indices_are_one_line(channels):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 3)).eval()
    with pytest.raises(InputError, match="channels must be a channel index or a sequence of them"):
        medlens.explain(model, torch.randn(2, 1, 8, 8), 0, "crp", layer="1", channels=channels)
