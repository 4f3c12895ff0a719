"""Prediction basis: a retrieved training case that is the query's image itself is flagged (a case
leaking across splits, as BreastMNIST's test[76] = train[115] with another label), in the
library, basis.json, the report and the command's output."""

from __future__ import annotations

import json

import numpy as np
import torch

from medlens.cli import main
from medlens.models import CNN, save_model
from medlens.selfexplain.basis import prediction_basis


def model() -> CNN:
    torch.manual_seed(0)
    return CNN(2, 1, 2, widths=(4, 8), input_shape=(1, 16, 16)).eval()


def test_same_image_flagged_only_for_the_copy():
    train = torch.rand(10, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    queries = torch.stack([train[4], train[6] + 0.05])  # a copy; a changed image
    basis = prediction_basis(model(), queries, train, torch.zeros(10, dtype=torch.long), k=2, saliency=False)
    assert basis.indices[0, 0] == 4
    assert basis.same_image.tolist() == [[True, False], [False, False]]


def test_command_reports_the_leak(tmp_path, capsys):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (10, 16, 16)).astype(np.uint8)
    test = np.stack([train[3], rng.integers(0, 256, (16, 16)).astype(np.uint8)])
    labels = np.arange(10) % 2
    np.savez(tmp_path / "d.npz", train_images=train, train_labels=labels, test_images=test,
             test_labels=np.array([1 - labels[3], 0]))
    path = save_model(model(), tmp_path / "m.pt", {"input_shape": [1, 16, 16], "class_names": ["benign", "malignant"]})
    out = tmp_path / "b"
    assert main(["basis", "--model", str(path), "--data", str(tmp_path / "d.npz"), "--index", "0", "--index", "1",
                 "--k", "1", "--out", str(out)]) == 0
    queries = json.loads((out / "basis.json").read_text())["queries"]
    assert [q["neighbours"][0]["same_image"] for q in queries] == [True, False]
    assert queries[0]["neighbours"][0]["train_index"] == 3
    assert "is the same image as training case #3 (labelled malignant)" in capsys.readouterr().out
    assert "the same image as the query" in (out / "report.html").read_text()
