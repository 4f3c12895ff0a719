"""A model with a frozen backbone run under ``torch.no_grad()`` (or detached): no gradient reaches
the input. Gradient methods and LRP crashed with torch's "The differentiated Tensor ... appears
to not have been used in the graph"; the CAM family said the layer "is not run on the way" to
the output, which it is. Every gradient method now says why, and what explains such a model;
occlusion and RISE explain it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import medlens
from medlens.errors import InputError

SMALL = {"integrated_gradients": {"n_steps": 4}, "smoothgrad": {"n_samples": 3}, "rise": {"n_masks": 16},
         "occlusion": {"window": 8, "stride": 8}}


class FrozenBackbone(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.how = how
        self.backbone = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))

    def forward(self, x):
        if self.how == "no_grad":
            with torch.no_grad():
                features = self.backbone(x)
        else:
            features = self.backbone(x).detach()
        return self.head(features)


@pytest.mark.parametrize("how", ["no_grad", "detach"])
def test_gradient_methods_say_no_gradient_reaches_and_black_box_methods_explain(how):
    model, x = FrozenBackbone(how).eval(), torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    for method in medlens.methods():
        if method in ("occlusion", "rise"):
            assert torch.isfinite(medlens.explain(model, x, 0, method, **SMALL.get(method, {})).values).all()
            continue
        with pytest.raises(InputError, match=r"^no gradient reaches the (input|differentiated layer) from the target "
                                             r"score: .*; occlusion and rise explain such a model") as err:
            medlens.explain(model, x, 0, method, **SMALL.get(method, {}))
        assert "\n" not in str(err.value), method
