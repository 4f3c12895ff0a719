"""Outputs a user's model really returns: a binary classifier's one logit per input ``(B,)``
(BCEWithLogitsLoss heads), a named tuple or dataclass whose ``logits`` is not the first field
(``ModelOutput(loss, logits)``), and a scalar. The first two were refused or explained the wrong
tensor (a loss); a scalar crashed integrated gradients, occlusion and FastCAM with a traceback."""

from __future__ import annotations

import collections
import dataclasses

import pytest
import torch
from torch import nn

import medlens
from medlens.errors import InputError

SMALL = {"integrated_gradients": {"n_steps": 4}, "smoothgrad": {"n_samples": 3}, "rise": {"n_masks": 16},
         "occlusion": {"window": 8, "stride": 8}}
LossFirst = collections.namedtuple("LossFirst", "loss logits")


@dataclasses.dataclass
class Output:
    loss: torch.Tensor | None
    logits: torch.Tensor


class Net(nn.Module):
    def __init__(self, returns: str, classes: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.returns = returns
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                 nn.Linear(4, classes))

    def forward(self, x):
        logits = self.net(x)
        if self.returns == "flat":
            return logits.squeeze(1)
        if self.returns == "namedtuple":
            return LossFirst(logits.mean(), logits)
        if self.returns == "dataclass":
            return Output(None, logits)
        if self.returns == "scalar":
            return logits.sum()
        return logits


def _x() -> torch.Tensor:
    return torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("returns, classes", [("flat", 1), ("namedtuple", 3), ("dataclass", 3)])
def test_every_method_explains_the_logits(returns, classes):
    wrapped, plain = Net(returns, classes).eval(), Net("tensor", classes).eval()
    for method in medlens.methods():
        for target in (None, 0):
            got = medlens.explain(wrapped, _x(), target, method, **SMALL.get(method, {}))
            want = medlens.explain(plain, _x(), target, method, **SMALL.get(method, {}))
            torch.testing.assert_close(got.values, want.values, msg=f"{method} target={target}")
            assert torch.equal(got.target, want.target)


@pytest.mark.parametrize("method", medlens.methods())
def test_a_scalar_output_is_one_line(method):
    with pytest.raises(InputError, match=r"scores of shape \(\) for \d input\(s\); medlens explains one row") as err:
        medlens.explain(Net("scalar").eval(), _x(), 0, method, **SMALL.get(method, {}))
    assert "\n" not in str(err.value)
