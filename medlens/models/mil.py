"""Attention-based multiple-instance learning over the patches of a large image.

Ilse, Tomczak and Welling, "Attention-based Deep Multiple Instance Learning", ICML 2018: a bag
of instances ``h_1..h_N`` (here: embeddings of the patches of one image) is pooled by learnt
weights that sum to one over the bag,

    a_n = softmax_n( w^T tanh(V h_n) )                              (attention pooling)
    a_n = softmax_n( w^T (tanh(V h_n) * sigmoid(U h_n)) )           (gated attention)
    z   = sum_n a_n h_n,      logits = classifier(z)

and the weights ``a_n`` say which patches the decision rests on. Tomita et al., "Attention-based
deep neural networks for detection of cancerous and precancerous esophagus tissue on
histopathological slides", JAMA Network Open 2019, apply it to whole-slide images too large for
one pass.

:class:`PatchAttentionMIL` takes the whole image ``(B, C, *spatial)`` like any medlens
classifier, so every attribution method explains it too; it cuts the image into a grid of
non-overlapping patches (the image side must be a multiple of ``patch``), embeds every patch
with a small CNN (1D, 2D or 3D), pools and classifies. :meth:`PatchAttentionMIL.forward_bag`
takes a bag of patches directly (any order, any size: the pool is permutation invariant).
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medlens.core.random import generator
from medlens.core import layers as by_rank
from medlens.errors import InputError
from medlens.models.io import register_architecture
from medlens.models.training import fit



def to_patches(x: torch.Tensor, patch: int) -> torch.Tensor:
    """``(B, C, *spatial)`` -> ``(B, N, C, *[patch] * d)``, patches in row-major grid order.

    Every spatial side must be a multiple of ``patch``; ``N = prod(side // patch)``.
    """
    b, c, *spatial = x.shape
    if any(s % patch for s in spatial):
        raise InputError(f"image of spatial shape {tuple(spatial)} is not a whole number of {patch}-wide patches")
    grid = [s // patch for s in spatial]
    d = len(spatial)
    # (B, C, g1, p, g2, p, ...) -> (B, g1, g2, ..., C, p, p, ...)
    y = x.reshape(b, c, *[v for g in grid for v in (g, patch)])
    perm = [0] + [2 + 2 * i for i in range(d)] + [1] + [3 + 2 * i for i in range(d)]
    return y.permute(*perm).reshape(b, -1, c, *([patch] * d))


def from_patches(values: torch.Tensor, grid: Sequence[int], patch: int) -> torch.Tensor:
    """Per-patch values ``(B, N)`` -> a map ``(B, 1, *spatial)`` constant on each patch."""
    b = values.shape[0]
    v = values.reshape(b, 1, *grid)
    for axis in range(2, 2 + len(grid)):
        v = v.repeat_interleave(patch, dim=axis)
    return v


@register_architecture("patch-attention-mil")
class PatchAttentionMIL(nn.Module):
    """Attention-MIL classifier over the patch grid of an image (Ilse et al. 2018).

    Parameters
    ----------
    spatial_dims : {1, 2, 3}
    in_channels : int
    num_classes : int
    patch : int
        Patch side in pixels (voxels); the image sides must be multiples of it.
    widths : sequence of int
        Channels of the patch encoder's blocks (``conv - BN - ReLU - max-pool``, then global
        average pooling).
    embed_dim : int
        Instance embedding size ``h_n``.
    attention_dim : int
        Size of the attention MLP's hidden layer (``V``, ``U``).
    gated : bool
        Gated attention (``tanh * sigmoid``) instead of plain ``tanh`` attention.
    input_shape : sequence of int, optional

    Input ``(B, in_channels, *spatial)``; output logits ``(B, num_classes)``.
    """

    arch = "patch-attention-mil"

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        num_classes: int = 2,
        patch: int = 32,
        widths: Sequence[int] = (8, 16, 32),
        embed_dim: int = 64,
        attention_dim: int = 32,
        gated: bool = True,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if spatial_dims not in by_rank.RANKS:
            raise InputError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
        if patch < 2 ** (len(widths) - 1):
            raise InputError(f"patch {patch} is too small for {len(widths)} pooling blocks")
        self.config = {
            "spatial_dims": spatial_dims, "in_channels": in_channels, "num_classes": num_classes,
            "patch": patch, "widths": list(widths), "embed_dim": embed_dim, "attention_dim": attention_dim,
            "gated": gated, "input_shape": list(input_shape) if input_shape is not None else None,
        }
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.patch, self.gated, self.spatial_dims = int(patch), bool(gated), spatial_dims
        layers: list[nn.Module] = []
        channels = in_channels
        for i, width in enumerate(widths):
            layers += [by_rank.conv(spatial_dims)(channels, width, 3, padding=1), by_rank.batch_norm(spatial_dims)(width), nn.ReLU()]
            if i < len(widths) - 1:
                layers.append(by_rank.max_pool(spatial_dims)(2))
            channels = width
        layers += [by_rank.adaptive_avg_pool(spatial_dims)(1), nn.Flatten(), nn.Linear(channels, embed_dim), nn.ReLU()]
        self.encoder = nn.Sequential(*layers)
        self.attention_v = nn.Linear(embed_dim, attention_dim)
        self.attention_u = nn.Linear(embed_dim, attention_dim) if gated else None
        self.attention_w = nn.Linear(attention_dim, 1)
        self.classifier = nn.Linear(embed_dim, num_classes)

    def embed_patches(self, patches: torch.Tensor) -> torch.Tensor:
        """Instance embeddings ``(B, N, embed_dim)`` of patches ``(B, N, C, *patch)``."""
        b, n = patches.shape[:2]
        return self.encoder(patches.reshape(b * n, *patches.shape[2:])).reshape(b, n, -1)

    def attention(self, h: torch.Tensor) -> torch.Tensor:
        """Weights ``(B, N)`` summing to 1 over each bag, from embeddings ``(B, N, E)``."""
        scores = torch.tanh(self.attention_v(h))
        if self.attention_u is not None:
            scores = scores * torch.sigmoid(self.attention_u(h))
        return torch.softmax(self.attention_w(scores)[..., 0], dim=1)

    def forward_bag(self, patches: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, K)`` and attention ``(B, N)`` for a bag of patches ``(B, N, C, *patch)``."""
        h = self.embed_patches(patches)
        a = self.attention(h)
        return self.classifier((a[..., None] * h).sum(1)), a

    def forward_with_attention(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits ``(B, K)`` and per-patch attention ``(B, N)`` (row-major grid order) of images."""
        return self.forward_bag(to_patches(x, self.patch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_with_attention(x)[0]

    def grid(self, spatial: Sequence[int]) -> tuple[int, ...]:
        """The patch grid of an image of ``spatial`` shape."""
        return tuple(int(s) // self.patch for s in spatial)


def train_mil(
    model: PatchAttentionMIL,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int = 10,
    batch_size: int = 8,
    lr: float = 1e-3,
    seed: int = 0,
) -> list[float]:
    """Train a MIL model on whole images ``(N, C, *spatial)`` with AdamW; returns the mean loss per epoch.

    Only the image label supervises: no patch label is seen (weak supervision, as in MIL).
    Random flips of the whole image augment (patch order changes, the label does not).
    """
    gen = generator(seed, "batches")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)

    def batches(epoch: int):
        order = torch.randperm(len(inputs), generator=gen)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            xb = inputs[idx]
            for axis in range(2, xb.ndim):
                if bool(torch.rand((), generator=gen) < 0.5):
                    xb = xb.flip(axis)
            yield xb, labels[idx]

    history = fit(model, batches, lambda batch: (F.cross_entropy(model(batch[0]), batch[1]), len(batch[1])),
                  epochs=epochs, optimizer=opt, desc="training MIL")
    losses = [entry["loss"] for entry in history]
    model.eval()
    return losses
