"""``--quiet`` silences progress only ("results are still printed", as its help says): ``explain`` and
``report`` printed nothing with it, not even the warning that white noise given to an ECG model is unlike
its training data, so a script run with ``--quiet`` lost every finding and warning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlens.cli import main
from medlens.data import load_dataset
from medlens.evaluation.familiarity import familiarity_reference
from medlens.models import CNN, save_model


@pytest.fixture(scope="module")
def ecg_model_and_noise(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("ecg")
    model = CNN(1, 1, 2, widths=(4, 8), input_shape=(1, 140)).eval()
    train, val = load_dataset("ecg5000", "train").inputs[:300], load_dataset("ecg5000", "val").inputs
    meta = {"input_shape": [1, 140], "class_names": ["normal", "abnormal"],
            "familiarity": familiarity_reference(model, train, val)}
    path = save_model(model, folder / "ecg.pt", meta)
    noise = folder / "noise.npy"
    np.save(noise, np.random.default_rng(0).standard_normal((1, 140)).astype(np.float32))
    return path, noise


@pytest.mark.parametrize("command", ["explain", "report"])
def test_quiet_still_prints_the_finding_and_its_warnings(command, ecg_model_and_noise, tmp_path, capsys):
    model, noise = ecg_model_and_noise
    extra = ["--method", "gradient"] if command == "explain" else ["--methods", "gradient"]
    assert main([command, "--model", str(model), "--input", str(noise), *extra, "--out", str(tmp_path / "o"),
                 "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "warning (unlike_training)" in printed
    assert str(tmp_path / "o") in printed  # the result line names where it went
