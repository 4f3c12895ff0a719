"""A ``torch.compile``'d model: its compiled graph does not run module hooks registered after
compilation, so the CAM family and CRP refused it ("the chosen layer is not run on the way from
the input to the model output") and LRP silently returned another map. explain goes through the
module it compiled, which computes the same function with its hooks."""

from __future__ import annotations

import torch
from torch import nn

import medlens
from medlens.core.hooks import count_hooks


def test_a_compiled_model_gets_the_maps_of_the_module_it_compiled():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU(),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3)).eval()
    compiled = torch.compile(net, backend="aot_eager")  # dynamo and autograd capture, no C++ build
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    compiled(x)  # compiled before any hook exists, as a user's model is
    for method in ("gradient", "lrp", "gradcam", "crp"):
        got = medlens.explain(compiled, x, [0, 2], method)
        torch.testing.assert_close(got.values, medlens.explain(net, x, [0, 2], method).values, msg=method)
        assert count_hooks(compiled) == 0
