"""A compact vision transformer (Dosovitskiy et al., "An Image is Worth 16x16 Words", ICLR 2021)
for 2D images and 3D volumes.

A strided convolution cuts the input into patches (``patch`` voxels a side) and embeds each
(``stem="patch"``), or a convolutional stem does (``stem="conv"``: 3x3 convolutions of stride 2,
each but the last followed by batch norm and ReLU, one per halving down to the same patch grid;
Xiao et al., "Early Convolutions Help Transformers See Better", NeurIPS 2021). On the small lesion
benchmark the patch projection alone does not learn where the stem does
(``benchmarks/transformers.py --stem patch`` against the default). A class token is put in front
of the patch tokens, learned position embeddings are added, and ``depth`` pre-norm transformer blocks follow; the class token's final state (``pool="cls"``) or
the mean of the patch tokens (``pool="mean"``) goes through a linear head.

Its attention module computes the attention probabilities with an ``nn.Softmax`` module
(:class:`Attention.softmax`), so that their values and gradients can be read with a forward
hook: :mod:`medlens.attribution.transformer` explains the model by attention rollout and by
gradient-weighted attention. For Grad-CAM on tokens, the input of the last block's attention
(``blocks.{depth-1}.norm1``) is the usual layer: with a class-token head, the patch tokens at
the last block's *output* do not reach the scores.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from medlens.models.io import register_architecture

_CONV = {2: nn.Conv2d, 3: nn.Conv3d}
_NORM = {2: nn.BatchNorm2d, 3: nn.BatchNorm3d}


class Attention(nn.Module):
    """Multi-head self-attention over ``(B, N, D)`` tokens, probabilities from a softmax module."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.softmax = nn.Softmax(dim=-1)  # its output (B, heads, N, N) is the attention
        self.drop = nn.Dropout(dropout)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4).unbind(0)
        probs = self.softmax((q @ k.transpose(-2, -1)) * self.scale)
        out = (self.drop(probs) @ v).transpose(1, 2).reshape(b, n, d)
        return self.proj(out)


class Block(nn.Module):
    """Pre-norm transformer block: ``x + attn(norm1(x))``, then ``x + mlp(norm2(x))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


@register_architecture("vit")
class ViT(nn.Module):
    """Compact vision transformer.

    Parameters
    ----------
    spatial_dims : {2, 3}
    in_channels, num_classes : int
    input_shape : sequence of int
        ``(C, *spatial)``; every side a multiple of ``patch`` (it fixes the number of position
        embeddings).
    patch : int
        Side of a patch.
    dim, depth, heads : int
        Token width, number of blocks, attention heads.
    mlp_ratio : float
    dropout : float
    pool : {"cls", "mean"}
        Class token (prepended) or mean of the patch tokens (no class token).
    stem : {"patch", "conv"}
        Patch embedding: one convolution of kernel and stride ``patch``, or ``log2(patch)``
        3x3 convolutions of stride 2 (``patch`` a power of two) ending on the same grid.

    Input ``(B, in_channels, *spatial)``; output logits ``(B, num_classes)``.
    """

    arch = "vit"

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        num_classes: int = 2,
        input_shape: Sequence[int] = (1, 64, 64),
        patch: int = 8,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        dropout: float = 0.0,
        pool: str = "cls",
        stem: str = "patch",
    ) -> None:
        super().__init__()
        if spatial_dims not in _CONV:
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        if pool not in ("cls", "mean"):
            raise ValueError(f"pool must be 'cls' or 'mean', got {pool!r}")
        if stem not in ("patch", "conv") or (stem == "conv" and (patch < 2 or patch & (patch - 1))):
            raise ValueError(f"stem must be 'patch', or 'conv' with a power-of-two patch, got {stem!r} with patch {patch}")
        spatial = tuple(int(s) for s in input_shape[1:])
        if len(spatial) != spatial_dims or any(s % patch for s in spatial):
            raise ValueError(f"input_shape {tuple(input_shape)} needs {spatial_dims} sides, each a multiple of {patch}")
        self.config = {
            "spatial_dims": spatial_dims, "in_channels": in_channels, "num_classes": num_classes,
            "input_shape": [int(s) for s in input_shape], "patch": patch, "dim": dim, "depth": depth,
            "heads": heads, "mlp_ratio": mlp_ratio, "dropout": dropout, "pool": pool, "stem": stem,
        }
        self.input_shape = tuple(int(s) for s in input_shape)
        self.pool = pool
        self.grid = tuple(s // patch for s in spatial)
        n_patches = int(torch.Size(self.grid).numel())
        self.patch_embed = (_CONV[spatial_dims](in_channels, dim, kernel_size=patch, stride=patch) if stem == "patch"
                            else conv_stem(spatial_dims, in_channels, dim, patch))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim)) if pool == "cls" else None
        self.pos = nn.Parameter(torch.randn(1, n_patches + (pool == "cls"), dim) * 0.02)
        self.blocks = nn.Sequential(*(Block(dim, heads, mlp_ratio, dropout) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The final tokens ``(B, N, dim)`` (class token first when ``pool="cls"``)."""
        t = self.patch_embed(x).flatten(2).transpose(1, 2)  # (B, n_patches, dim), row-major grid order
        if self.cls_token is not None:
            t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], dim=1)
        return self.norm(self.blocks(t + self.pos))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(B, dim)``."""
        t = self.tokens(x)
        return t[:, 0] if self.cls_token is not None else t.mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def conv_stem(spatial_dims: int, in_channels: int, dim: int, patch: int) -> nn.Sequential:
    """``log2(patch)`` 3x3 convolutions of stride 2 (widths doubling up to ``dim``), ReLU between."""
    n = patch.bit_length() - 1
    widths = [max(8, dim >> (n - 1 - i)) for i in range(n - 1)] + [dim]
    layers: list[nn.Module] = []
    for i, width in enumerate(widths):
        layers.append(_CONV[spatial_dims](in_channels if i == 0 else widths[i - 1], width, 3, stride=2, padding=1))
        if i < n - 1:
            layers += [_NORM[spatial_dims](width), nn.ReLU()]
    return nn.Sequential(*layers)


def build_for_inputs(inputs: torch.Tensor, num_classes: int) -> ViT:
    """A ViT sized for a data set's inputs ``(N, C, *spatial)``: a convolutional stem down to
    patches of 8 (4 for sides under 32), 64-wide tokens, 4 blocks of 4 heads."""
    spatial = tuple(int(s) for s in inputs.shape[2:])
    patch = 8 if min(spatial) >= 32 else 4
    return ViT(len(spatial), int(inputs.shape[1]), num_classes, input_shape=tuple(inputs.shape[1:]), patch=patch,
               stem="conv")
