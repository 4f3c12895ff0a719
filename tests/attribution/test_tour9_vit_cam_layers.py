"""The default CAM layers of a MONAI ViT are maps of the input, never attention internals, and
read the tokens after attention has mixed them (the last block's norm1), not the patch embedding.

The probe took any output of the input's rank: on a 3D ViT, SABlock's q/k/v rearrangement
``(3, B, heads, N, d)`` (a volume's rank, the batch second), so Grad-CAM, Grad-CAM++ and FastCAM
returned three maps for one volume; on a 2D ViT, the attention weights ``(B, heads, N, N)``, so the
"map" was a 17x17 token-by-token matrix stretched over the image.
"""

from __future__ import annotations

import warnings

import pytest
import torch

pytest.importorskip("einops")  # MONAI's attention block needs it
monai_nets = pytest.importorskip("monai.networks.nets")

import medlens  # noqa: E402


def _vit(dims: int, size: int) -> torch.nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return monai_nets.ViT(1, (size,) * dims, (8,) * dims, hidden_size=32, mlp_dim=64, num_layers=2, num_heads=4,
                              classification=True, num_classes=3, spatial_dims=dims).eval()


@pytest.mark.parametrize("method", ["gradcam", "gradcam_pp", "fastcam"])
def test_one_volume_gives_one_map_on_a_3d_vit(method):
    x = torch.randn(1, 1, 16, 16, 16, generator=torch.Generator().manual_seed(1))
    a = medlens.explain(_vit(3, 16), x, 0, method)
    assert a.values.shape == (1, 1, 16, 16, 16)


@pytest.mark.parametrize("dims, size, shape", [(2, 32, (2, 1, 4, 4)), (3, 16, (2, 1, 2, 2, 2))])
def test_the_default_cam_layer_of_a_vit_is_the_tokens_entering_its_last_attention(dims, size, shape):
    """Not the attention weights (a token-by-token matrix), and not the patch embedding (a map of
    the input before any attention): the normed tokens the last attention layer reads, as in
    pytorch-grad-cam's ViT recipe (after that layer only the class token reaches the output)."""
    x = torch.randn(2, 1, *(size,) * dims, generator=torch.Generator().manual_seed(2))
    a = medlens.explain(_vit(dims, size), x, [0, 1], "gradcam", upsample=False)
    assert a.params["layer"] == "blocks.1.norm1"
    assert a.values.shape == shape  # one cell per 8^dims patch
    assert float(a.values.abs().sum()) > 0


def test_medlens_vit_gets_the_same_default_cam_layer():
    from medlens.models import ViT

    torch.manual_seed(0)
    model = ViT(2, 1, 3, input_shape=(1, 32, 32), patch=8, dim=16, depth=3, heads=2).eval()
    a = medlens.explain(model, torch.randn(2, 1, 32, 32), [0, 1], "gradcam", upsample=False)
    assert a.params["layer"] == "blocks.2.norm1" and a.values.shape == (2, 1, 4, 4)
