"""Fixtures shared by the command-line tests."""

from pathlib import Path

import pytest
import torch

from medlens.data.recipe import Recipe
from medlens.models import CNN, save_model


@pytest.fixture(scope="module")
def tiny_scan_model(tmp_path_factory) -> Path:
    """A two-class CNN file for 24x24 grey pictures (min-max normalised), untrained: for tests of
    what the commands read and write, not of what the model says."""
    torch.manual_seed(0)
    cnn = CNN(2, 1, 2, widths=(4, 8), input_shape=(1, 24, 24))
    meta = {"input_shape": [1, 24, 24], "class_names": ["a", "b"],
            "recipe": Recipe(normalize="minmax", channels=1, size=(24, 24))}
    return save_model(cnn, tmp_path_factory.mktemp("model") / "m.pt", meta)
