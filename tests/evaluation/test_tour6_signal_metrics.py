"""Deletion and insertion AUC of a signal model with the leaderboard's default options.

Seen: ``medlens evaluate`` and ``medlens audit`` of a beat model trained on MIT-BIH record 100
(252-sample windows at 360 Hz) stopped with "steps must be an integer between 1 and the number
of positions or patches (16), got 20": the automatic patch, 1/16 of the longest axis, leaves a
signal 16 regions (an image 256), fewer than the curve's 20 steps.
"""

from __future__ import annotations

import pytest
import torch

from medlens.core.targets import Target
from medlens.evaluation.faithfulness import reference_input
from medlens.evaluation.registry import EvalBatch, get_metric


class _Sum(torch.nn.Module):
    """Logits ``(s, -s)`` with ``s`` the mean of the input: class 0's probability is ``sigmoid(2 s)``."""

    def forward(self, x):
        s = x.flatten(1).mean(1)
        return torch.stack([s, -s], 1)


def _batch(x):
    target = Target(torch.zeros(len(x), dtype=torch.long))
    return EvalBatch(_Sum(), x, target, x.clone(), lambda *_: x.clone(), torch.arange(len(x)))


@pytest.mark.parametrize("name", ["deletion_auc", "insertion_auc"])
def test_a_beat_window_gets_the_default_twenty_steps_from_the_original_to_the_blurred_signal(name):
    x = torch.linspace(-1, 3, 252).repeat(2, 2, 1)  # two beats, two leads
    auc, extras = get_metric(name).fn(_batch(x))
    curve = extras["curve"]
    assert curve.shape == (2, 21) and auc.shape == (2,)
    full, blurred = torch.sigmoid(2 * x.flatten(1).mean(1)), torch.sigmoid(2 * reference_input(x, "blur").flatten(1).mean(1))
    start, end = (full, blurred) if name == "deletion_auc" else (blurred, full)
    torch.testing.assert_close(curve[:, 0].float(), start.float())
    torch.testing.assert_close(curve[:, -1].float(), end.float())


def test_an_input_with_fewer_regions_than_steps_gets_a_step_per_region():
    x = torch.arange(9.0).reshape(1, 1, 3, 3)
    _auc, extras = get_metric("deletion_auc").fn(_batch(x))
    assert extras["curve"].shape == (1, 10)  # nine pixels, nine steps
