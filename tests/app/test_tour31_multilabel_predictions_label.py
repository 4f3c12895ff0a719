"""``predictions.csv`` of a multi-label model on its npz writes each case's true findings in
``label`` (joined by ';' as ``predicted`` is, 'No Finding' for none), not an empty column."""

from __future__ import annotations

import csv

import numpy as np
import torch

from medlens.cli import main
from medlens.models import CNN, save_model

FINDINGS = ["Effusion", "Mass"]


def test_the_label_column_gives_the_true_findings(tmp_path):
    y = np.array([[1, 1], [0, 0], [0, 1]], dtype=np.uint8)
    np.savez(tmp_path / "f.npz", class_names=np.array(FINDINGS), test_images=np.random.default_rng(0).random(
        (3, 16, 16)).astype(np.float32), test_labels=y)
    torch.manual_seed(0)
    model = CNN(2, 1, len(FINDINGS), widths=(4,), input_shape=(1, 16, 16))
    save_model(model, tmp_path / "m.pt", {"input_shape": [1, 16, 16], "class_names": FINDINGS, "multilabel": True})
    assert main(["predict", "--model", str(tmp_path / "m.pt"), "--data", str(tmp_path / "f.npz"),
                 "--out", str(tmp_path / "p"), "--quiet"]) == 0
    with open(tmp_path / "p" / "predictions.csv", newline="") as fh:
        labels = [row["label"] for row in csv.DictReader(fh)]
    assert labels == ["Effusion;Mass", "No Finding", "Mass"]
