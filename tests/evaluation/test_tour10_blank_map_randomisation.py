"""A map that is blank (one value everywhere) on the trained model shows nothing, so it cannot pass the
randomisation check. Seen: ``medlens report`` on a model whose output ignores its input (a constant model)
said of its all-zero gradient map "The map changes when the model's learned weights are scrambled
(similarity 0.00, below 0.50), so it reflects the model": the rank correlation of a constant map is
undefined and was scored 0, "changed completely", whenever the randomised model's map varied. The same
score reached the leaderboard (Grad-CAM maps that its ReLU cuts to zero on a case counted as passing)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import torch
from PIL import Image
from torch import nn

from medlens.cli import main
from medlens.data.recipe import Recipe
from medlens.evaluation.registry import get_metric
from medlens.models import CNN, save_model

RHO = get_metric("randomisation_spearman").fn


def _batch(original, randomised):
    return SimpleNamespace(x=torch.zeros(len(original), 1, 8, 8), attribution=original, randomised_attribution=randomised)


def test_a_blank_map_fails_whatever_the_randomised_model_shows():
    varying = torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    blank = torch.zeros(2, 1, 8, 8)
    assert RHO(_batch(blank, varying)).tolist() == [1.0, 1.0]  # before: 0, a pass
    assert RHO(_batch(blank, blank)).tolist() == [1.0, 1.0]
    assert RHO(_batch(varying, blank)).tolist() == [0.0, 0.0]  # a map that randomisation wipes out did change


def test_the_case_report_does_not_say_a_constant_models_blank_map_reflects_the_model(tmp_path):
    torch.manual_seed(0)
    cnn = CNN(2, 1, 2, widths=(4, 8), input_shape=(1, 24, 24))
    last = [m for m in cnn.modules() if isinstance(m, nn.Linear)][-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.copy_(torch.tensor([0.0, 0.7]))  # the same answer for every input
    model = save_model(cnn, tmp_path / "m.pt", {"input_shape": [1, 24, 24], "class_names": ["a", "b"],
                                                "recipe": Recipe(normalize="minmax", channels=1, size=(24, 24))})
    scan = tmp_path / "scan.png"
    Image.fromarray((np.random.default_rng(0).random((24, 24)) * 255).astype(np.uint8)).save(scan)
    out = tmp_path / "case"
    assert main(["report", "--model", str(model), "--input", str(scan), "--methods", "gradient", "--out", str(out),
                 "--quiet"]) == 0
    trust = json.loads((out / "case.json").read_text())["trust"]
    assert "reflects the model" not in trust["headline"]
    assert trust["methods"]["gradient"] != "supported"
