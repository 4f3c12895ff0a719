"""A ``torch.compile``'d model, or a model with a compiled backbone: the compiled graph does not
run module hooks registered after compilation, so LRP silently returned another map and the CAM
family refused the model with a misleading "the chosen layer is not run (does not lie) between
the input and the target score". explain runs the compiled parts as the modules they compiled,
which compute the same function with their hooks, and puts them back after."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import medlens
from medlens.core.hooks import count_hooks


def _parts() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    backbone = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 6, 3, padding=1), nn.ReLU())
    return backbone, nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 3))


@pytest.mark.parametrize("compiled_part", ["whole", "backbone"])
def test_a_compiled_model_gets_the_maps_of_the_module_it_compiled(compiled_part):
    backbone, head = _parts()
    eager = nn.Sequential(backbone, head).eval()
    if compiled_part == "whole":  # aot_eager: dynamo and autograd capture, no C++ build
        model = torch.compile(eager, backend="aot_eager")
    else:
        model = nn.Sequential(torch.compile(backbone, backend="aot_eager"), head).eval()
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    model(x)  # compiled before any hook exists, as a user's model is
    for method in ("gradient", "lrp", "gradcam", "crp"):
        got = medlens.explain(model, x, [0, 2], method)
        torch.testing.assert_close(got.values, medlens.explain(eager, x, [0, 2], method).values, msg=method)
        assert count_hooks(model) == 0
    if compiled_part == "backbone":
        assert isinstance(model[0], torch._dynamo.eval_frame.OptimizedModule)  # put back


@pytest.mark.parametrize("compiled_part, layer", [("whole", "_orig_mod.0.2"), ("backbone", "0._orig_mod.2")])
def test_a_layer_named_as_the_compiled_model_lists_it(compiled_part, layer):
    """``named_modules()`` of a compiled model lists its layers under ``_orig_mod``: that name
    must choose the layer the eager name does."""
    backbone, head = _parts()
    eager = nn.Sequential(backbone, head).eval()
    model = (torch.compile(eager, backend="aot_eager") if compiled_part == "whole"
             else nn.Sequential(torch.compile(backbone, backend="aot_eager"), head).eval())
    assert layer in dict(model.named_modules())
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    got = medlens.explain(model, x, 0, "gradcam", layer=layer)
    torch.testing.assert_close(got.values, medlens.explain(eager, x, 0, "gradcam", layer="0.2").values)
