"""Inputs of another dtype than the model's: raw CT in int16 Hounsfield units, 8-bit pixels, a
float64 array from NumPy, a float64 model given float32. PyTorch's layers refuse a mixed dtype
(and integer inputs have no gradient), so every method crashed with a raw RuntimeError; explain
gives the model its own dtype, values unchanged."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import medlens

SMALL = {"integrated_gradients": {"n_steps": 4}, "smoothgrad": {"n_samples": 3}, "rise": {"n_masks": 16},
         "occlusion": {"window": 8, "stride": 8}}


def _cnn() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3)).eval()


@pytest.mark.parametrize("dtype", [torch.int16, torch.uint8, torch.float64])
def test_every_method_explains_an_input_of_another_dtype_as_the_same_values_in_the_model_dtype(dtype):
    model = _cnn()
    raw = torch.randint(0, 200, (2, 1, 16, 16), generator=torch.Generator().manual_seed(1)).to(dtype)
    for method in medlens.methods():
        got = medlens.explain(model, raw, [0, 2], method, **SMALL.get(method, {}))
        want = medlens.explain(model, raw.float(), [0, 2], method, **SMALL.get(method, {}))
        assert got.values.dtype == torch.float32, method
        torch.testing.assert_close(got.values, want.values, msg=method)


def test_a_float64_model_explains_a_float32_batch():
    model = _cnn().double()
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(2))
    for method in ("gradient", "integrated_gradients", "gradcam", "occlusion", "lrp"):
        got = medlens.explain(model, x, 1, method, **SMALL.get(method, {}))
        assert got.values.dtype == torch.float64, method
        want = medlens.explain(model, x.double(), 1, method, **SMALL.get(method, {}))
        torch.testing.assert_close(got.values, want.values)
