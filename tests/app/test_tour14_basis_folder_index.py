"""``medlens basis --input FOLDER --index I``: the queries are the folder's cases I (as in a data
set), not its first case again and again; an index past the folder is refused in one line."""

from __future__ import annotations

import json

import numpy as np
import torch
from PIL import Image

from medlens.cli import main
from medlens.models import CNN, save_model


def test_folder_queries_are_the_indexed_cases(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.random((12, 28, 28)).astype(np.float32)
    np.savez(tmp_path / "train.npz", train_images=train, train_labels=np.arange(12) % 2)
    scans = tmp_path / "scans"
    scans.mkdir()
    for i in (0, 3):  # two of the training images as PNG scans: each must retrieve itself
        Image.fromarray((train[i] * 255).round().astype(np.uint8)).save(scans / f"scan{i}.png")
    torch.manual_seed(0)
    model_path = save_model(CNN(2, 1, 2, widths=(4, 8), input_shape=(1, 28, 28)).eval(), tmp_path / "m.pt",
                            {"input_shape": [1, 28, 28]})
    out = tmp_path / "basis"
    args = ["basis", "--model", str(model_path), "--data", str(tmp_path / "train.npz"), "--input", str(scans),
            "--k", "1", "--method", "gradient", "--out", str(out)]
    assert main([*args, "--index", "0", "--index", "1"]) == 0
    queries = json.loads((out / "basis.json").read_text())["queries"]
    assert [q["neighbours"][0]["train_index"] for q in queries] == [0, 3]
    assert [q["query"] for q in queries] == ["case-0000", "case-0001"]
    assert main([*args, "--index", "2"]) == 2
