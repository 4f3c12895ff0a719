"""A batch too flat to be signals, images or volumes is refused with a hint that fits it: token
ids (integers) are not told to gain two axes, which would give a (1, 1, B, L) "image"."""

import pytest
import torch
from torch import nn

import medlens
from medlens.errors import InputError


def test_token_ids_are_named_as_such():
    ids = torch.randint(1, 50, (2, 12))
    with pytest.raises(InputError, match="token ids") as err:
        medlens.explain(nn.Linear(12, 2), ids, method="attention_rollout")
    assert "x[None, None]" not in str(err.value)


def test_a_float_batch_of_rows_is_told_both_readings():
    with pytest.raises(InputError, match=r"x\[:, None\]") as err:
        medlens.explain(nn.Linear(20, 2), torch.randn(3, 20), method="lrp")
    assert "x[None, None]" in str(err.value) and "\n" not in str(err.value)


def test_one_signal_without_axes_keeps_its_hint():
    with pytest.raises(InputError, match=r"x\[None, None\]"):
        medlens.explain(nn.Linear(20, 2), torch.randn(20), method="gradient")
