"""The transformer methods at their defaults on MONAI's ViT (2D and 3D) and UNETR with a region
target (random weights, nothing downloaded): finite maps of the input's size, no hook left."""

from __future__ import annotations

import warnings

import pytest
import torch

pytest.importorskip("einops")  # MONAI's attention block needs it
monai_nets = pytest.importorskip("monai.networks.nets")

from medlens.attribution.explain import explain  # noqa: E402
from medlens.attribution.transformer.attention_maps import attention_layers, capture_attention  # noqa: E402
from medlens.core.hooks import count_hooks  # noqa: E402
from medlens.core.targets import ReducedOutput  # noqa: E402

NEW = ("attention_rollout", "transformer_attribution")


def _vit(dims: int, size: int, classification: bool = True) -> torch.nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return monai_nets.ViT(1, (size,) * dims, (8,) * dims, hidden_size=32, mlp_dim=64, num_layers=2, num_heads=4,
                              classification=classification, num_classes=3, spatial_dims=dims).eval()


def _unetr(size: int = 32) -> torch.nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = monai_nets.UNETR(1, 2, (size,) * 3, feature_size=4, hidden_size=32, mlp_dim=64, num_heads=4,
                               spatial_dims=3).eval()
    mask = torch.zeros((size,) * 3)
    mask[8:16, 8:16, 8:16] = 1
    return ReducedOutput(net, channel=1, mask=mask)


@pytest.mark.parametrize("net, dims, size", [("vit", 2, 32), ("vit", 3, 16), ("unetr", 3, 32)])
def test_every_transformer_method_runs_at_defaults(net, dims, size):
    model = _vit(dims, size) if net == "vit" else _unetr(size)
    x = torch.randn(2 if net == "vit" else 1, 1, *([size] * dims), generator=torch.Generator().manual_seed(1))
    assert len(attention_layers(model)) == (2 if net == "vit" else 12)
    for method in NEW:
        a = explain(model, x, 0, method)
        assert a.values.shape == (len(x), 1) + x.shape[2:], method
        assert torch.isfinite(a.values).all() and (a.values >= 0).all() and a.values.std() > 0, method
        assert count_hooks(model) == 0, method


def test_grad_cam_on_a_monai_vit_token_layer():
    model = _vit(2, 32)
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    a = explain(model, x, [0, 1], "gradcam", layer="blocks.1.norm1", upsample=False)
    assert a.values.shape == (2, 1, 4, 4) and torch.isfinite(a.values).all() and count_hooks(model) == 0


def test_flash_attention_blocks_are_read_through_their_explicit_path_and_switched_back():
    plain = _vit(2, 32)
    x = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(3))
    expected = explain(plain, x, 1, "transformer_attribution").values
    flash = _vit(2, 32)
    blocks = [m for _, m in attention_layers(flash)]
    for m in blocks:
        m.use_flash_attention = True
    with torch.no_grad():
        before = flash(x)[0]
    got = explain(flash, x, 1, "transformer_attribution").values
    torch.testing.assert_close(got, expected)
    assert all(m.use_flash_attention for m in blocks)
    with torch.no_grad(), capture_attention(flash) as record:
        inside = flash(x)[0]
    torch.testing.assert_close(inside, before, rtol=1e-5, atol=1e-6)
    assert len(record.maps) == 2 and record.maps[0].shape == (1, 4, 17, 17)
