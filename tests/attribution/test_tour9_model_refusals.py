"""A model that cannot take the input: one line for every method, whichever pass meets it first.

Only the engine's first chunk named the problem; integrated gradients, SmoothGrad, the CAM
family and occlusion run their own probe passes first and raised PyTorch's RuntimeError, and
BatchNorm's rank check (a ValueError, e.g. one (C, H, W) sample without its batch dimension)
or a forward that needs more arguments (a TypeError) escaped every method as a traceback.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

import medlens
from medlens.core.hooks import count_hooks
from medlens.errors import InputError

SMALL = {"integrated_gradients": {"n_steps": 4}, "smoothgrad": {"n_samples": 3}, "rise": {"n_masks": 16},
         "occlusion": {"window": 8, "stride": 8}}


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2), nn.Linear(6, 3))


class NeedsMask(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = _cnn()

    def forward(self, x, mask):
        return self.net(x * mask)


def _refused(model: nn.Module, x: torch.Tensor, method: str) -> str:
    model.train()  # left in training mode by the user: restored after the error too
    with pytest.raises(InputError) as err:
        medlens.explain(model, x, 0, method, **SMALL.get(method, {}))
    assert "\n" not in str(err.value), method
    assert count_hooks(model) == 0 and all(m.training for m in model.modules()), method
    return str(err.value)


@pytest.mark.parametrize("method", medlens.methods())
def test_wrong_channels_are_one_line_for_every_method(method):
    message = _refused(_cnn(), torch.randn(2, 3, 16, 16), method)
    assert message.startswith("input of shape (batch, 3, 16, 16) does not fit the model"), method


@pytest.mark.parametrize("method", medlens.methods())
def test_one_sample_without_its_batch_dimension_is_told_to_add_it(method):
    message = _refused(_cnn(), torch.randn(1, 16, 16), method)
    assert message.endswith("for one sample of shape (1, 16, 16), add the batch dimension (x[None])"), method


@pytest.mark.parametrize("method", ["gradient", "integrated_gradients", "gradcam", "occlusion"])
def test_a_forward_that_needs_more_than_the_input_is_one_line(method):
    message = _refused(NeedsMask(), torch.randn(2, 1, 16, 16), method)
    assert message.startswith("the model cannot be called with the input alone") and "'mask'" in message
