"""``medlens basis`` and ``medlens concepts`` read a multi-label model file (``meta["multilabel"]``)
as one: basis shows the query's finding by its own sigmoid (p=0.88 for a logit of 2, not the
softmax 0.77 across findings), concepts fit the findings' sigmoids. Before, both commands loaded
the file without its multi-label flag."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medlens.cli import main
from medlens.models import CNN, save_model

NAMES = ["effusion", "nodule", "mass", "edema"]
BIAS = torch.tensor([2.0, -2.0, 0.5, -1.0])  # effusion: sigmoid 0.88, softmax 0.77


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tour24ml")
    rng = np.random.default_rng(0)
    data = folder / "set.npz"
    np.savez(data, **{f"{s}_images": rng.integers(0, 256, (n, 16, 16)).astype(np.uint8) for s, n in
                      (("train", 12), ("val", 4), ("test", 4))},
             **{f"{s}_labels": rng.integers(0, 4, (n, 1)) for s, n in (("train", 12), ("val", 4), ("test", 4))})
    torch.manual_seed(0)
    cnn = CNN(2, 1, 4, widths=(4, 8), input_shape=(1, 16, 16)).eval()
    with torch.no_grad():  # the logits: the bias plus a little of the input, so features still vary
        cnn.classifier.weight.mul_(1e-3)
        cnn.classifier.bias.copy_(BIAS)
    model = save_model(cnn, folder / "m.pt", {"input_shape": [1, 16, 16], "class_names": NAMES, "multilabel": True})
    return {"data": data, "model": model}


def test_basis_shows_the_findings_sigmoid(files, tmp_path):
    out = tmp_path / "b"
    assert main(["basis", "--model", str(files["model"]), "--data", str(files["data"]), "--k", "2",
                 "--out", str(out), "--quiet"]) == 0
    html = (out / "report.html").read_text()
    assert "predicted effusion (p=0.88)" in html and "(p=0.77)" not in html


def test_concepts_fit_the_findings_sigmoids(files, tmp_path):
    out = tmp_path / "c"
    assert main(["concepts", "--model", str(files["model"]), "--data", str(files["data"]), "--k", "2", "--epochs", "1",
                 "--top", "1", "--out", str(out), "--quiet"]) == 0
    found = json.loads((out / "concepts.json").read_text())
    assert found.get("multilabel") is True, sorted(found)

