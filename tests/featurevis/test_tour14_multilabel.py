"""A multi-label head (one sigmoid per finding, as ChestMNIST's 14): the probability of one finding
is the sigmoid of its logit, not a softmax across findings that do not compete."""

from __future__ import annotations

import json

import numpy as np
import torch

import medlens
from medlens import featurevis as fv
from medlens.cli import main
from medlens.models import CNN, save_model

FINDINGS = 14


def multilabel_model() -> CNN:
    torch.manual_seed(0)
    return CNN(2, 1, FINDINGS, widths=(4, 8), input_shape=(1, 16, 16)).eval()


def test_multilabel_probability_is_the_sigmoid_of_the_finding():
    model = multilabel_model()
    x = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        out = model(x)
    got = fv.objective_values(model, fv.probability(4, multilabel=True), x)
    torch.testing.assert_close(got, torch.sigmoid(out[:, 4]))
    # the softmax reading stays the default (one class among K)
    torch.testing.assert_close(fv.objective_values(model, fv.probability(4), x), torch.softmax(out, 1)[:, 4])


def test_a_multilabel_wrapped_model_is_read_by_its_sigmoids():
    model = multilabel_model()
    x = torch.rand(3, 1, 16, 16)
    with torch.no_grad():
        out = model(x)
    wrapped = medlens.MultiLabel(model)
    torch.testing.assert_close(fv.objective_values(wrapped, fv.probability(4), x), torch.sigmoid(out[:, 4]))
    already = medlens.MultiLabel(torch.nn.Sequential(model, torch.nn.Sigmoid()), outputs="probabilities")
    torch.testing.assert_close(fv.objective_values(already, fv.probability(4), x), torch.sigmoid(out[:, 4]))
    rendering = fv.render(wrapped, fv.probability(4), (1, 1, 16, 16), steps=2)
    assert 0 < float(rendering.values[-1, 0]) < 1


def test_cli_multi_label_renders_and_reports_sigmoid_probabilities(tmp_path):
    path = tmp_path / "chest.pt"
    save_model(multilabel_model(), path, {"input_shape": [1, 16, 16]})
    out = tmp_path / "o"
    code = main(["featurevis", "--model", str(path), "--out", str(out), "--steps", "3", "--objective",
                 "probability", "--classes", "2,5", "--multi-label"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    images = torch.from_numpy(np.load(out / "images.npy"))
    with torch.no_grad():
        expected = torch.sigmoid(multilabel_model()(images))
    unit = summary["units"][1]
    assert unit["objective"] == "sigmoid probability(5)"
    assert abs(unit["value"] - float(expected[1, 5])) < 1e-5
    assert len(unit["probabilities"]) == FINDINGS
    assert abs(unit["probabilities"][5] - float(expected[1, 5])) < 1e-5
