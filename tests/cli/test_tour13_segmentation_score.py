"""A segmentation target (a class's output summed in a mask, through sliding windows or not) is
one score, not a class prediction: summary.json and summary.csv must not say "predicted class 0"
and label the sum of class 1 as class 0's output."""

from __future__ import annotations

import csv
import json

import numpy as np
import torch

from medlens.cli import main


def _patch_model(tmp_path):
    torch.manual_seed(0)
    seg = torch.nn.Sequential(torch.nn.Conv3d(1, 2, 3, padding=1)).eval()
    torch.jit.script(seg).save(str(tmp_path / "seg.ts"))
    return tmp_path / "seg.ts"


def test_sliding_window_sum_is_a_score_not_a_prediction(tmp_path):
    model = _patch_model(tmp_path)
    cases = tmp_path / "cases"
    cases.mkdir()
    np.save(cases / "ct.npy", np.random.default_rng(0).normal(size=(12, 10, 6)).astype(np.float32))
    out = tmp_path / "out"
    assert main(["explain", "--model", str(model), "--input", str(cases), "--inferer", "sliding-window",
                 "--roi", "8,8,8", "--target-class", "1", "--method", "gradient", "--out", str(out), "--quiet"]) == 0
    folder = next(p for p in out.iterdir() if p.is_dir())
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["prediction"] is None and summary["predicted_class"] is None
    assert list(summary["outputs"]) == ["score"] and summary["target"] == 1
    row = next(csv.DictReader(open(out / "summary.csv")))
    assert row["status"] == "ok" and row["prediction"] == "" and row["predicted_class"] == "" and row["probability"] == ""
