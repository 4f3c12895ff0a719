"""The ``vit`` architecture: registered, rebuilt from its model file, trainable by recipe."""

from __future__ import annotations

import torch

from medlens.app.recipes import BUILDERS
from medlens.models import ViT, load_model, save_model
from medlens.models.io import architectures


def test_vit_is_registered_and_round_trips_through_a_model_file(tmp_path):
    assert "vit" in architectures() and "vit" in BUILDERS.names()
    torch.manual_seed(0)
    model = ViT(3, 1, 2, input_shape=(1, 16, 16, 32), patch=8, dim=16, depth=1, heads=2, pool="mean").eval()
    path = save_model(model, tmp_path / "vit.pt", {"class_names": ["a", "b"]})
    loaded, _ = load_model(path)
    x = torch.randn(2, 1, 16, 16, 32)
    assert isinstance(loaded, ViT) and torch.equal(loaded(x), model(x))
    built = BUILDERS.get("vit")(torch.zeros(4, 1, 28, 28), 3)
    assert built.grid == (7, 7) and built(torch.zeros(1, 1, 28, 28)).shape == (1, 3)
    assert built.embed(torch.zeros(2, 1, 28, 28)).shape == (2, 64)


def test_conv_stem_reaches_the_patch_grid_and_round_trips(tmp_path):
    torch.manual_seed(0)
    model = ViT(2, 1, 2, input_shape=(1, 32, 48), patch=8, dim=16, depth=1, heads=2, stem="conv").eval()
    assert model.grid == (4, 6) and model.tokens(torch.zeros(1, 1, 32, 48)).shape == (1, 1 + 24, 16)
    loaded, _ = load_model(save_model(model, tmp_path / "vit.pt", {"class_names": ["a", "b"]}))
    x = torch.randn(2, 1, 32, 48)
    assert loaded.config["stem"] == "conv" and torch.equal(loaded(x), model(x))
