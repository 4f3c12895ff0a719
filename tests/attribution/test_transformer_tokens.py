"""Token grids found from the token count and the input's shape; Grad-CAM and FastCAM on token
layers equal the maps computed by hand after a manual reshape."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import medlens
from medlens.attribution.transformer.tokens import TokenGrid, as_feature_map, patch_size, token_grid
from medlens.core.hooks import count_hooks, resolve_layer
from medlens.errors import InputError
from medlens.models import ViT
from tests.attribution.test_model_outputs import TinyViT


@pytest.mark.parametrize("n, spatial, expected", [
    (16, (32, 32), TokenGrid(0, (4, 4))),           # no class token
    (17, (32, 32), TokenGrid(1, (4, 4))),           # class token
    (197, (224, 224), TokenGrid(1, (14, 14))),      # ViT-B/16
    (32, (32, 64), TokenGrid(0, (4, 8))),           # non-square
    (33, (64, 32), TokenGrid(1, (8, 4))),
    (8, (16, 16, 16), TokenGrid(0, (2, 2, 2))),     # 3D
    (65, (16, 32, 64), TokenGrid(1, (2, 4, 8))),    # 3D, non-cubic
    (64, (96, 96, 48), TokenGrid(0, (4, 4, 4))),   # anisotropic patches (24, 24, 12)
    (65, (32, 32, 32), TokenGrid(1, (4, 4, 4))),
    (21, (32, 32), TokenGrid(5, (4, 4))),           # class token and four registers
])
def test_token_grid(n, spatial, expected):
    got = token_grid(n, spatial)
    assert got == expected and got.n_tokens == n


def test_token_grid_with_a_known_patch_and_a_failure():
    # a patch that does not divide the side (the convolution floors)
    assert token_grid(10, (30, 30), patch=10) == TokenGrid(1, (3, 3))
    assert token_grid(17, (32, 32), patch=(8, 8)) == TokenGrid(1, (4, 4))
    with pytest.raises(InputError, match="do not form a patch grid") as err:
        token_grid(100, (32, 32))
    assert "\n" not in str(err.value)


def test_patch_size_and_feature_map_order():
    model = ViT(2, 1, 2, input_shape=(1, 32, 64), patch=8, dim=8, depth=1, heads=2)
    assert patch_size(model) == (8, 8)
    assert patch_size(TinyViT()) == (8, 8)
    tokens = torch.arange(2 * 33 * 3.0).reshape(2, 33, 3)
    fmap = as_feature_map(tokens, (32, 64))
    assert fmap.shape == (2, 3, 4, 8)
    # row-major: patch (i, j) is token 1 + 8 i + j
    assert torch.equal(fmap[1, :, 2, 5], tokens[1, 1 + 8 * 2 + 5])


def _grad_cam_by_hand(model, x, target, layer_name, prefix, grid):
    layer = resolve_layer(model, layer_name)
    seen = {}

    def hook(_m, _i, out):
        out.retain_grad()
        seen["a"] = out

    handle = layer.register_forward_hook(hook)
    try:
        logits = model(x)
        logits[torch.arange(len(x)), torch.as_tensor(target)].sum().backward()
    finally:
        handle.remove()
    a, g = seen["a"].detach(), seen["a"].grad
    b, _, d = a.shape
    a = a[:, prefix:].transpose(1, 2).reshape(b, d, *grid)
    g = g[:, prefix:].transpose(1, 2).reshape(b, d, *grid)
    weights = g.mean(dim=tuple(range(2, g.ndim)), keepdim=True)
    return F.relu((weights * a).sum(1, keepdim=True))


@pytest.mark.parametrize("kind", ["vit-cls", "vit-mean-3d", "mha"])
def test_grad_cam_on_a_token_layer_equals_the_map_after_a_manual_reshape(kind):
    torch.manual_seed(0)
    if kind == "mha":
        model, layer, prefix, x = TinyViT().eval(), "encoder", 0, torch.randn(2, 1, 32, 32)
    elif kind == "vit-cls":
        model = ViT(2, 1, 3, input_shape=(1, 32, 64), patch=8, dim=16, depth=2, heads=2).eval()
        layer, prefix, x = "blocks.1.norm1", 1, torch.randn(2, 1, 32, 64)
    else:
        model = ViT(3, 1, 3, input_shape=(1, 16, 16, 32), patch=8, dim=16, depth=2, heads=2, pool="mean").eval()
        layer, prefix, x = "blocks.1", 0, torch.randn(2, 1, 16, 16, 32)
    grid = tuple(s // 8 for s in x.shape[2:])
    expected = _grad_cam_by_hand(model, x, [0, 2], layer, prefix, grid)
    got = medlens.explain(model, x, [0, 2], "gradcam", layer=layer, upsample=False).values
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-7)
    full = medlens.explain(model, x, [0, 2], "gradcam", layer=layer).values
    assert full.shape[2:] == x.shape[2:] and count_hooks(model) == 0


def test_fastcam_and_gradcam_pp_run_on_token_layers():
    torch.manual_seed(0)
    model = ViT(2, 1, 3, input_shape=(1, 32, 32), patch=8, dim=16, depth=2, heads=2).eval()
    x = torch.randn(2, 1, 32, 32)
    a = medlens.explain(model, x, 1, "fastcam", layers=["blocks.0", "blocks.1.norm1"], layer="blocks.1.norm1")
    b = medlens.explain(model, x, 1, "gradcam_pp", layer="blocks.1.norm1")
    for values in (a.values, b.values):
        assert values.shape == (2, 1, 32, 32) and torch.isfinite(values).all()
    assert count_hooks(model) == 0
