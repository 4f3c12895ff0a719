"""The case report draws the maps through the recipe's exact inverse, and says when a scan is
unlike the model's training data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from medlens.app.case_report import CaseInput, _native_map, case_report
from medlens.cli import main
from medlens.core.resize import upsample_to
from medlens.data import read
from medlens.data.recipe import Recipe, invert, prepare
from medlens.models import CNN, save_model


def _picture(path, shape=(30, 40)):
    Image.fromarray((np.random.default_rng(2).random(shape) * 255).astype(np.uint8)).save(path)
    return read(path)


def test_a_map_constant_per_model_pixel_comes_back_as_the_inverse_not_a_resize(tmp_path):
    record = _picture(tmp_path / "a.png")
    prepared = prepare(record, Recipe(normalize="unit", channels=1, size=(24, 24), fit="crop_or_pad"))
    values = torch.arange(24 * 24, dtype=torch.float32).reshape(1, 1, 24, 24)  # one value per model pixel
    got = _native_map(values, prepared.x, (30, 40), "image", prepared.geometry)
    want = invert(prepared.geometry, values[0]).numpy()
    assert got.shape == (30, 40) and np.array_equal(got, want)
    assert np.array_equal(got[3:27, 8:32], values[0, 0].numpy())  # each model pixel back on its own pixel
    outside = np.ones((30, 40), bool)
    outside[3:27, 8:32] = False
    assert np.all(got[outside] == 0)  # the cropped border the model never saw
    assert not np.allclose(got, upsample_to(values.double(), (30, 40))[0, 0].numpy())  # a resize would differ


def test_report_command_writes_the_maps_explain_writes(tmp_path):
    torch.manual_seed(0)
    model = CNN(2, 1, 2, widths=(4, 6), input_shape=(1, 24, 24)).eval()
    recipe = Recipe(normalize="unit", channels=1, size=(24, 24), fit="crop_or_pad")
    path = save_model(model, tmp_path / "m.pt", {"input_shape": [1, 24, 24], "class_names": ["a", "b"], "recipe": recipe})
    record = _picture(tmp_path / "a.png")
    prepared = prepare(record, recipe)
    report, _ = case_report(model, prepared.x, 1, case=CaseInput(native=record.array.numpy(), geometry=prepared.geometry),
                            methods=("gradient",))
    x = prepared.x.clone().requires_grad_(True)
    model(x)[0, 1].backward()
    assert np.allclose(report.maps[0].values, invert(prepared.geometry, x.grad[0]).numpy(), atol=1e-6)
    # the command applies the model's recipe and sends the map through the same inverse
    assert main(["explain", "--model", str(path), "--input", str(tmp_path / "a.png"), "--method", "gradient",
                 "--target", "1", "--out", str(tmp_path / "ex"), "--quiet"]) == 0
    assert np.allclose(np.load(tmp_path / "ex" / "attribution.npy"), report.maps[0].values, atol=1e-6)
    assert main(["report", "--model", str(path), "--input", str(tmp_path / "a.png"), "--methods", "gradient",
                 "--target", "1", "--out", str(tmp_path / "rep"), "--quiet"]) == 0


@pytest.fixture(scope="module")
def chest_model():
    from medlens.app.recipes import train_on_dataset

    model, meta = train_on_dataset("pneumoniamnist", epochs=1, progress=False, seed=0)
    return model, meta


@pytest.mark.parametrize("data, index, unlike", [("pneumoniamnist", 0, False), ("breastmnist", 0, True),
                                                 ("breastmnist", 1, True)])
def test_unfamiliar_input_is_named_in_plain_words(chest_model, data, index, unlike):
    from medlens.data import load_dataset
    from medlens.report.case import render_case_report

    model, meta = chest_model
    assert meta["familiarity"]["scores"]["features"]["q99"] > 0  # stored at training time, as plain data
    json.dumps(meta["familiarity"])
    x = load_dataset(data, "test").inputs[index:index + 1]
    report, summary = case_report(model, x, meta=meta, methods=("gradient",))
    assert summary["familiarity"]["unlike_training_data"] is unlike
    page = render_case_report(report)
    if unlike:
        assert "This scan is unlike the cases the model was trained on" in page
        # in the summary, as a warning above the finding
        assert '<li class="trust-unsupported" data-code="unlike_training">This scan is unlike' in page
        assert page.index('data-code="unlike_training"') < page.index('class="finding"')
    else:
        assert "This scan resembles the model&#x27;s training data" in page


def test_older_model_files_say_not_available(chest_model):
    from medlens.data import load_dataset

    model, meta = chest_model
    old = {k: v for k, v in meta.items() if k != "familiarity"}
    _, summary = case_report(model, load_dataset("breastmnist", "test").inputs[:1], meta=old, methods=("gradient",))
    assert summary["familiarity"]["unlike_training_data"] is None
    assert "not available" in summary["familiarity"]["sentence"]
