"""A class name or a digit read from a form as the target: ``target="1"`` crashed every method with
torch's ``TypeError: new(): invalid data type 'str'``; it is one line naming what a target is."""

from __future__ import annotations

import pytest
import torch

from medlens.core.targets import to_target
from medlens.errors import TargetError


@pytest.mark.parametrize("target", ["1", "pneumonia", b"0"])
@pytest.mark.parametrize("output", [None, torch.zeros(2, 3)])
def test_a_string_target_is_one_line(target, output):
    with pytest.raises(TargetError, match=r"target must be a class index \(an int\), not the string"):
        to_target(target, output, batch=2)


def test_explain_refuses_a_string_target_before_running_the_model():
    import medlens

    model = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), torch.nn.Flatten(), torch.nn.LazyLinear(2))
    with pytest.raises(TargetError, match="not the string '1'"):
        medlens.explain(model, torch.randn(2, 1, 8), "1", "gradient")
