"""``medlens train`` warns when the model ends no better than the most frequent class."""

from __future__ import annotations

import numpy as np
import torch

from medlens.app.recipes import chance_warning, majority_share
from medlens.cli import main


def test_majority_share_and_the_warning_threshold():
    assert majority_share(torch.tensor([0, 1, 1, 1])) == 0.75
    assert chance_warning({"accuracy": 0.75, "majority_share": 0.75}) is not None
    assert chance_warning({"accuracy": 0.70, "majority_share": 0.75}) is not None
    assert chance_warning({"accuracy": 0.80, "majority_share": 0.75}) is None
    assert chance_warning({"accuracy": 0.50}) is None  # older model files do not record the share


def test_train_on_inputs_that_carry_no_information_warns(tmp_path, capsys):
    """Every image is the same, so no model can beat the most frequent class: the command must say so."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 40), ("val", 20), ("test", 20)):
        arrays[f"{split}_images"] = np.full((n, 8, 8), 100, np.uint8)
        arrays[f"{split}_labels"] = (rng.random((n, 1)) < 0.3).astype(np.int64)
    np.savez(tmp_path / "blank.npz", **arrays)
    assert main(["train", "--data", str(tmp_path / "blank.npz"), "--epochs", "1", "--out", str(tmp_path / "m.pt"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning: the model is no better than always answering the most frequent class" in err
