"""The audit's cases.csv and clusters.csv name each case's predicted class (and label) beside the
index that other code reads."""

from __future__ import annotations

import csv

import numpy as np
import torch
from PIL import Image

from medlens.cli import main
from medlens.models import CNN, save_model

NAMES = ["normal", "lesion"]


def test_cases_and_clusters_name_the_class(tmp_path):
    folder = tmp_path / "scans"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(4):
        Image.fromarray(rng.integers(0, 256, (16, 16)).astype(np.uint8)).save(folder / f"c{k}.png")
    (tmp_path / "labels.csv").write_text("case,label\nc0.png,lesion\nc1.png,normal\nc2.png,1\nc3.png,0\n")
    torch.manual_seed(0)
    model = save_model(CNN(2, 1, 2, widths=(4,), input_shape=(1, 16, 16)), tmp_path / "m.pt",
                       {"input_shape": [1, 16, 16], "class_names": NAMES})
    out = tmp_path / "a"
    assert main(["audit", "--model", str(model), "--data", str(folder), "--labels", str(tmp_path / "labels.csv"),
                 "--size", "16,16", "--methods", "gradient", "--cluster-method", "gradient",
                 "--metric-option", "deletion_auc.steps=2", "--metric-option", "insertion_auc.steps=2",
                 "--out", str(out), "--quiet"]) == 0
    cases = list(csv.DictReader((out / "cases.csv").open()))
    assert [r["label_name"] for r in cases] == ["lesion", "normal", "lesion", "normal"]
    assert all(r["predicted_name"] == NAMES[int(r["predicted"])] for r in cases)
    clusters = list(csv.DictReader((out / "clusters.csv").open()))
    assert clusters and all(r["class_name"] == NAMES[int(r["class"])] for r in clusters)
