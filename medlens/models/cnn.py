"""A compact CNN for 1D signals, 2D slices and 3D volumes.

Blocks of ``conv - batchnorm - ReLU - (max-pool)`` followed by global average pooling and one
linear layer, so that Grad-CAM of the last block equals the class activation map (Zhou et al.
2016). One class serves every rank through ``spatial_dims``.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from medlens.core import layers as by_rank



class CNN(nn.Module):
    """Reference convolutional classifier.

    Parameters
    ----------
    spatial_dims : {1, 2, 3}
    in_channels : int
    num_classes : int
    widths : sequence of int
        Channels of each block; every block but the last halves the resolution.
    kernel_size : int
    input_shape : sequence of int, optional
        ``(C, *spatial)`` the model was trained on; lets medlens name a shape mismatch.

    Input ``(B, in_channels, *spatial)``; output logits ``(B, num_classes)``.
    The last block's ReLU output (``features.block{n}.act``) is the CAM layer.
    """

    arch = "cnn"

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        num_classes: int = 2,
        widths: Sequence[int] = (16, 32, 64),
        kernel_size: int = 3,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if spatial_dims not in by_rank.RANKS:
            raise ValueError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
        self.config = {
            "spatial_dims": spatial_dims,
            "in_channels": in_channels,
            "num_classes": num_classes,
            "widths": list(widths),
            "kernel_size": kernel_size,
            "input_shape": list(input_shape) if input_shape is not None else None,
        }
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        blocks = []
        channels = in_channels
        for i, width in enumerate(widths):
            block = nn.Sequential()
            block.add_module("conv", by_rank.conv(spatial_dims)(channels, width, kernel_size, padding=kernel_size // 2))
            block.add_module("norm", by_rank.batch_norm(spatial_dims)(width))
            block.add_module("act", nn.ReLU())
            if i < len(widths) - 1:
                block.add_module("pool", by_rank.max_pool(spatial_dims)(2))
            blocks.append((f"block{i + 1}", block))
            channels = width
        self.features = nn.Sequential()
        for name, block in blocks:
            self.features.add_module(name, block)
        self.pool = by_rank.adaptive_avg_pool(spatial_dims)(1)
        self.classifier = nn.Linear(channels, num_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(B, widths[-1])``: the model's embedding space."""
        return self.pool(self.features(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))
