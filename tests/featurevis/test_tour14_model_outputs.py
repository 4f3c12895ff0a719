"""Feature visualisation reads a third-party model's output as every medlens method does (a
tuple's first element, a binary classifier's (B,) logit), and a model that cannot take the
requested shape (a 3-channel first layer given 1 channel) is refused in one line."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medlens import featurevis as fv
from medlens.errors import InputError


class Net(nn.Module):
    """Returns ``(logits, features)`` or, with ``binary``, one logit per input ``(B,)``."""

    def __init__(self, in_channels: int = 1, binary: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, 4, 3, padding=1)
        self.fc = nn.Linear(4, 1 if binary else 3)
        self.binary = binary

    def forward(self, x):
        h = torch.relu(self.conv(x))
        logits = self.fc(h.mean((2, 3)))
        return logits[:, 0] if self.binary else (logits, h)


def test_tuple_output_class_objectives_read_its_logits():
    torch.manual_seed(0)
    model, x = Net().eval(), torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        logits = model(x)[0]
    torch.testing.assert_close(fv.objective_values(model, fv.probability(2), x), torch.softmax(logits, 1)[:, 2])
    rendering = fv.render(model, fv.logit(1), (1, 1, 8, 8), steps=2)
    assert torch.isfinite(rendering.values).all()


def test_binary_logit_output_is_one_column():
    torch.manual_seed(0)
    model, x = Net(binary=True).eval(), torch.rand(2, 1, 8, 8)
    with torch.no_grad():
        z = model(x)
    torch.testing.assert_close(fv.objective_values(model, fv.probability(1), x), torch.sigmoid(z))
    torch.testing.assert_close(fv.objective_values(model, fv.logit(0), x), z)
    fv.render(model, fv.probability(1), (1, 1, 8, 8), steps=2)


def test_three_channel_model_given_one_channel_is_refused_in_one_line():
    model = Net(in_channels=3).eval()
    with pytest.raises(InputError, match=r"input of shape \(batch, 1, 8, 8\) does not fit the model"):
        fv.render(model, fv.channel("conv", 0), (1, 1, 8, 8), steps=2)
    with pytest.raises(InputError, match="does not fit the model"):
        fv.objective_values(model, fv.logit(0), torch.rand(1, 1, 8, 8))
