"""Feature visualisation of a TorchScript model (how a third-party model reaches the command line):
class objectives work; a layer objective is refused in one line that names what does work here,
not 'use a gradient or perturbation method' (advice for attribution)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medlens import featurevis as fv
from medlens.cli import main
from medlens.errors import InputError


def scripted() -> torch.jit.ScriptModule:
    torch.manual_seed(0)
    return torch.jit.script(nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                                          nn.Linear(4, 2)).eval())


def test_layer_objectives_refused_class_objectives_rendered(tmp_path, capsys):
    model = scripted()
    assert fv.render(model, fv.logit(1), (1, 1, 8, 8), steps=2).images.shape == (1, 1, 8, 8)
    with pytest.raises(InputError, match="logit, probability and output objectives need no layer"):
        fv.render(model, fv.channel("1", 0), (1, 1, 8, 8), steps=2)
    path = tmp_path / "ts.pt"
    model.save(str(path))
    assert main(["featurevis", "--model", str(path), "--shape", "1,8,8", "--layer", "1", "--steps", "1",
                 "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "logit, probability and output objectives need no layer" in err and "perturbation" not in err
