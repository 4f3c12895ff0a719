"""Sliding-window explanations of a whole CT volume as it is read: int16 Hounsfield units crashed
every method with PyTorch's dtype RuntimeError; and the model came back with one training flag
for all its modules (``model.train(training)``), so a part the user had frozen in eval mode (a
BatchNorm backbone) was switched to training."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medlens.attribution.sliding_window import explain_sliding_window

INFERER = {"roi_size": (8, 8, 8), "overlap": 0.25}


def _segmenter() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv3d(1, 4, 3, padding=1), nn.BatchNorm3d(4), nn.ReLU(), nn.Conv3d(4, 2, 3, padding=1))


@pytest.mark.parametrize("method", ["gradient", "occlusion", "gradcam"])
def test_an_int16_volume_is_explained_as_its_values_and_every_training_flag_is_restored(method):
    model = _segmenter().train()
    model[1].eval()  # the user froze the normalisation
    flags = [m.training for m in model.modules()]
    hu = torch.randint(-1000, 2000, (1, 1, 12, 12, 12), generator=torch.Generator().manual_seed(1)).to(torch.int16)
    got = explain_sliding_window(model, hu, INFERER, method, target_class=1)
    assert [m.training for m in model.modules()] == flags
    want = explain_sliding_window(model, hu.float(), INFERER, method, target_class=1)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, want)
