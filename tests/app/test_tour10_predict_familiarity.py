"""``medlens predict`` said nothing of cases unlike the model's training data: noise and radiographs got
their probabilities alike, where ``report``, ``evaluate`` and ``audit`` all run the familiarity check. It
now writes ``familiarity.csv`` (the audit's per-case check) and says first how many are unlike."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from medlens.data import load_dataset
from medlens.data.recipe import Recipe
from medlens.evaluation.familiarity import familiarity_reference
from medlens.models import CNN, save_model


@pytest.fixture(scope="module")
def chest_xray_model(tmp_path_factory):
    torch.manual_seed(0)
    model = CNN(2, 1, 2, widths=(4, 8), input_shape=(1, 28, 28)).eval()
    train = load_dataset("pneumoniamnist", "train").inputs[:300]
    val = load_dataset("pneumoniamnist", "val").inputs
    meta = {"input_shape": [1, 28, 28], "class_names": ["normal", "pneumonia"],
            "recipe": Recipe(normalize="minmax", channels=1, size=(28, 28)),
            "familiarity": familiarity_reference(model, train, val)}
    return save_model(model, tmp_path_factory.mktemp("model") / "m.pt", meta)


def test_predict_names_the_noise_among_radiographs(tmp_path, chest_xray_model):
    from medlens.app.predict import predict_cases

    folder = tmp_path / "scans"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k, x in enumerate(load_dataset("pneumoniamnist", "test").inputs[:3]):
        Image.fromarray((x[0].numpy() * 255).astype(np.uint8)).save(folder / f"a{k}.png")
    for k in range(2):
        Image.fromarray(rng.integers(0, 256, (28, 28)).astype(np.uint8)).save(folder / f"b{k}.png")
    result = predict_cases(model=str(chest_xray_model), data=str(folder), out=str(tmp_path / "out"))
    rows = list(csv.DictReader((tmp_path / "out" / "familiarity.csv").open()))
    assert [r["unlike_training_data"] for r in rows] == ["0", "0", "0", "1", "1"]
    assert any(n.startswith("2 of the 5 predicted cases (40%) are unlike the model's training data") for n in result.notes)
    assert any("their predictions may mean nothing" in n for n in result.notes)


def test_predict_on_familiar_cases_adds_no_note(tmp_path, chest_xray_model):
    from medlens.app.predict import predict_cases

    result = predict_cases(model=str(chest_xray_model), data="pneumoniamnist", limit=8, out=str(tmp_path / "out"))
    assert (tmp_path / "out" / "familiarity.csv").exists()
    assert not any("unlike" in n for n in result.notes)
