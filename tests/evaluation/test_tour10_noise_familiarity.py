"""Noise is never "like the training data".

Seen: ``medlens report`` with a chest X-ray CNN (PneumoniaMNIST, 3 epochs) on PNGs of Gaussian noise
(mean 128, sd 30) at 55 x 55 said "This scan resembles the model's training data" for 20 of 20 (median
score 0.89 of the threshold): shrunk to 28 x 28 by the recipe, noise is a grey field near the mean
training image, which the distances do not see. Neighbouring values of a radiograph are correlated (at
least 0.74 in every training case), those of noise hardly (0.29 to 0.41 after the recipe).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from medlens.data import load_dataset
from medlens.data.cases import open_cases
from medlens.data.recipe import Recipe
from medlens.evaluation.familiarity import familiarity


def _noise_png(path, size, seed):
    pixels = np.clip(np.random.default_rng(seed).normal(128, 30, (size, size)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return open_cases(path, recipe=Recipe(normalize="minmax", channels=1, size=(28, 28)), input_shape=(1, 28, 28)).case(0)


@pytest.mark.parametrize("size", [28, 55])
def test_a_png_of_noise_is_unlike_chest_xrays_and_says_why(chest_xray_reference, tmp_path, size):
    model, reference, _ = chest_xray_reference
    case = _noise_png(tmp_path / "noise.png", size, seed=size)
    found = familiarity(model, case.x, reference, reading=case.reading)
    assert found.unlike is True
    assert any(r.startswith("it is rough like noise: neighbouring values correlate") for r in found.reasons)


def test_held_out_chest_xrays_are_never_called_rough(chest_xray_reference):
    model, reference, _ = chest_xray_reference
    for x in load_dataset("pneumoniamnist", "test").inputs[::4]:
        assert not any("rough" in r for r in familiarity(model, x[None], reference).reasons)


def test_a_reference_written_before_the_rule_is_read_as_before(chest_xray_reference, tmp_path):
    model, reference, _ = chest_xray_reference
    older = {k: v for k, v in reference.items() if k != "least_neighbour_correlation"}
    case = _noise_png(tmp_path / "noise.png", 55, seed=1)
    assert not any("rough" in r for r in familiarity(model, case.x, older).reasons)
