"""``medlens featurevis --objective probability``: a class whose probability is already ~1 on the
starting image cannot move (gradient p(1 - p)); the command says so instead of presenting the
near-blank start as what the model finds most typical of the class."""

from __future__ import annotations

import json

import torch

from medlens.cli import main
from medlens.models import CNN, save_model


def test_saturated_class_is_warned_about(tmp_path, capsys):
    torch.manual_seed(0)
    model = CNN(2, 1, 2, widths=(4,), input_shape=(1, 8, 8)).eval()
    with torch.no_grad():
        model.classifier.bias.copy_(torch.tensor([-20.0, 20.0]))  # class 1 certain for any input
    path = save_model(model, tmp_path / "m.pt", {"input_shape": [1, 8, 8], "class_names": ["normal", "pneumonia"]})
    out = tmp_path / "o"
    assert main(["featurevis", "--model", str(path), "--objective", "probability", "--steps", "2",
                 "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: pneumonia: probability 1.0000 already on the starting image" in err
    assert "normal:" not in err
    assert len(json.loads((out / "summary.json").read_text())["warnings"]) == 1
