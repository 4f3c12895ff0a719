"""The preprocessing recipe travels in the model file as plain data."""

from __future__ import annotations

import pytest

from medlens.data.recipe import Recipe
from medlens.errors import InputError


def test_model_file_stores_the_recipe_and_checks_it(tmp_path):
    from medlens.models import CNN, load_model, model_recipe, save_model

    model = CNN(2, 3, 2, widths=(4,), input_shape=(3, 16, 16))
    recipe = Recipe(windows=((40, 80), (80, 200), (600, 2800)), size=(16, 16))
    save_model(model, tmp_path / "m.pt", {"input_shape": [3, 16, 16], "recipe": recipe})
    _, meta = load_model(tmp_path / "m.pt")
    assert isinstance(meta["recipe"], dict) and model_recipe(meta) == recipe
    with pytest.raises(InputError, match="produces 1 input channels but the model takes 3"):
        model_recipe(meta, Recipe(channels=1))
    # an older file without a recipe: min-max and resize to its input shape
    assert model_recipe({"input_shape": [1, 28, 28]}) == Recipe(normalize="minmax", channels=1, size=(28, 28))
