"""Targets a user passes by mistake: ``target="1"`` (a class name or a digit from a form), one-hot
labels, a list of names, a callable of the wrong shape. They crashed with torch's TypeError/ValueError
or were refused for the wrong reason ("6 targets for a batch of 2"), or named a row count the user
never gave; each is one line naming what a target is."""

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


def test_a_callable_of_the_wrong_shape_is_told_the_rows_it_was_given():
    # integrated gradients calls the target on its path points (2 samples x 4 steps): the message
    # said "shape (8,)" for a batch of 2 without saying why
    import medlens

    model = torch.nn.Sequential(torch.nn.Conv1d(1, 2, 3), torch.nn.Flatten(), torch.nn.Linear(12, 3))
    with pytest.raises(TargetError, match=r"a tensor \(8,\) for the 8 output row\(s\) it was given .*; got \(8, 2\)"):
        medlens.explain(model, torch.randn(2, 1, 8), lambda out: out[:, :2], "integrated_gradients", n_steps=4,
                        batch_size=8, linear_entry=False)
