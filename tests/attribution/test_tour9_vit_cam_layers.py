"""The default CAM layers of a MONAI ViT are maps of the input, never attention internals.

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


def test_the_default_cam_layer_of_a_2d_vit_is_the_patch_grid_not_the_attention_weights():
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    a = medlens.explain(_vit(2, 32), x, [0, 1], "gradcam", upsample=False)
    assert a.params["layer"] == "patch_embedding.patch_embeddings"
    assert a.values.shape == (2, 1, 4, 4)  # one cell per 8x8 patch
