"""Training runs of exactly five optimiser steps: ``OneCycleLR`` divided by its warm-up's length.

Seen with ``medlens train --data scans/ --labels labels.csv --epochs 5`` on a folder of 17 real
DICOM files (one batch per epoch): "internal error: ZeroDivisionError: float division by zero".
A warm-up share of 0.2 of five steps ends after one step, and ``OneCycleLR`` divides by
``0.2 * 5 - 1 == 0``.
"""

from __future__ import annotations

import pytest
import torch

from medlens.models.training import train_classifier, warmup_share


@pytest.mark.parametrize("epochs", [1, 2, 5, 10])
def test_training_of_few_steps_runs_every_epoch(epochs):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(12, 1, 8, 8, generator=gen)
    y = torch.arange(12) % 2
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
    history = train_classifier(model, x, y, x[:4], y[:4], epochs=epochs, batch_size=64, progress=False)
    assert len(history) == epochs


def test_the_warm_up_share_moves_only_where_it_would_end_after_one_step():
    assert warmup_share(5, 0.2) == pytest.approx(0.4)  # two steps of five
    assert warmup_share(2, 0.5) == 1.0
    assert [warmup_share(n, 0.2) for n in (1, 2, 3, 4, 6, 10, 100)] == [0.2] * 7
    assert warmup_share(10, 0.1) == pytest.approx(0.2)
