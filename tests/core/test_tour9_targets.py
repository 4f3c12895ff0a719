"""Targets a user passes by mistake: ``target="1"`` (a class name or a digit from a form), one-hot
labels, a list of names. They crashed with torch's TypeError/ValueError or were refused for the
wrong reason ("6 targets for a batch of 2"); each is one line naming what a target is."""

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


@pytest.mark.parametrize("one_hot", [torch.eye(3)[[0, 2]], torch.eye(3, dtype=torch.long)[[0, 2]]])
def test_one_hot_labels_are_told_to_become_indices(one_hot):
    # float one-hot labels were refused for their dtype, integer ones as "6 targets for a batch of 2"
    with pytest.raises(TargetError, match=r"shape \(2, 3\), a row per sample; .*labels.argmax\(1\)"):
        to_target(one_hot, torch.zeros(2, 3))


@pytest.mark.parametrize("target", [["normal", "pneumonia"], {"class": 1}, [[0], [1, 2]]])
def test_targets_that_are_no_indices_are_one_line(target):
    with pytest.raises(TargetError, match="target must be a class index, one per sample, or a callable"):
        to_target(target, None, batch=2)
