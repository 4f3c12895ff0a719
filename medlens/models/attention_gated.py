"""Attention-gated classifier for 2D slices and 3D volumes (Schlemper et al. 2019).

Schlemper, Oktay, Schaap, Heinrich, Kainz, Glocker and Rueckert, "Attention gated networks:
Learning to leverage salient regions in medical images", Medical Image Analysis 53, 197-207
(2019). A plain convolutional backbone (blocks of ``conv - batchnorm - ReLU - max-pool``) whose
intermediate feature maps ``x_l`` are gated by **additive attention gates** driven by a
**gating signal** ``g`` from the coarsest scale (the last block)::

    q_l   = psi^T ReLU(W_x x_l + W_g up(g) + b_g) + b_psi        (1x1 convolutions)
    alpha = sigmoid(q_l)                                         in [0, 1], (B, 1, *s_l)
    s_l   = sum_i alpha_i x_l,i / sum_i alpha_i                  attention-weighted pooling

``up`` resamples the gating signal to the skip connection's grid (the paper strides ``x_l`` down
to ``g``'s grid and resamples ``alpha`` up; the two differ only in where the 1x1 products are
computed). The pooled vectors of every gate and the global average of ``g`` are concatenated
and classified by one linear layer (the paper's "concatenation" aggregation). The gate
coefficients ``alpha`` are the model's own explanation: :func:`gate_maps` returns them, and the
``attention_gates`` attribution method upsamples them to the input.

No state is kept on the module between calls: :meth:`AttentionGatedCNN.forward_with_gates`
returns the coefficients with the logits, and :func:`replaced_gates` changes them for a
faithfulness test only inside a ``with`` block.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medlens.core import layers as by_rank
from medlens.errors import InputError
from medlens.models.io import register_architecture


class AttentionGate(nn.Module):
    """Additive attention gate: coefficients ``alpha`` ``(B, 1, *s_x)`` in [0, 1] for ``x``.

    Parameters
    ----------
    spatial_dims : {1, 2, 3}
    x_channels, g_channels : int
        Channels of the gated feature map and of the gating signal.
    inter_channels : int
        Channels of the joint embedding ``W_x x + W_g g``.

    ``forward(x, g)`` takes ``x`` ``(B, Cx, *s_x)`` and ``g`` ``(B, Cg, *s_g)`` (a coarser grid)
    and returns ``alpha``. The sigmoid is the submodule ``alpha``, whose output hooks read
    (:func:`gate_maps`) or replace (:func:`replaced_gates`).
    """

    def __init__(self, spatial_dims: int, x_channels: int, g_channels: int, inter_channels: int) -> None:
        super().__init__()
        conv = by_rank.conv(spatial_dims)
        self.theta = conv(x_channels, inter_channels, 1, bias=False)
        self.phi = conv(g_channels, inter_channels, 1)
        self.psi = conv(inter_channels, 1, 1)
        self.alpha = nn.Sigmoid()
        self.mode = by_rank.interpolation_mode(spatial_dims)

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        g_up = F.interpolate(self.phi(g), size=x.shape[2:], mode=self.mode, align_corners=False)
        return self.alpha(self.psi(F.relu(self.theta(x) + g_up)))  # (B, 1, *s_x)


@register_architecture("attention-gated")
class AttentionGatedCNN(nn.Module):
    """Attention-gated convolutional classifier (Schlemper et al. 2019), 1D/2D/3D.

    Parameters
    ----------
    spatial_dims : {1, 2, 3}
    in_channels : int
    num_classes : int
    widths : sequence of int
        Channels of each block (at least 3 blocks); every block but the last halves the grid.
    gated : sequence of int
        Indices of the blocks whose outputs are gated (default: the two before the last).
    input_shape : sequence of int, optional
        ``(C, *spatial)`` the model was trained on.

    Input ``(B, in_channels, *spatial)``; output logits ``(B, num_classes)``.
    """

    arch = "attention-gated"

    def __init__(
        self,
        spatial_dims: int = 2,
        in_channels: int = 1,
        num_classes: int = 2,
        widths: Sequence[int] = (16, 32, 64, 64),
        gated: Sequence[int] | None = None,
        input_shape: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if spatial_dims not in by_rank.RANKS:
            raise InputError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims}")
        if len(widths) < 3:
            raise InputError(f"an attention-gated network needs at least 3 blocks, got widths {list(widths)}")
        gated = list(gated) if gated is not None else [len(widths) - 3, len(widths) - 2]
        if not gated or any(not 0 <= i < len(widths) - 1 for i in gated):
            raise InputError(f"gated blocks must be indices below the last block {len(widths) - 1}, got {gated}")
        self.config = {
            "spatial_dims": spatial_dims, "in_channels": in_channels, "num_classes": num_classes,
            "widths": list(widths), "gated": gated,
            "input_shape": list(input_shape) if input_shape is not None else None,
        }
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.gated = tuple(gated)
        conv, bn, pool = by_rank.conv(spatial_dims), by_rank.batch_norm(spatial_dims), by_rank.max_pool(spatial_dims)
        self.blocks = nn.ModuleList()
        channels = in_channels
        for i, width in enumerate(widths):
            block = nn.Sequential()
            if i > 0:
                block.add_module("pool", pool(2))
            block.add_module("conv", conv(channels, width, 3, padding=1))
            block.add_module("norm", bn(width))
            block.add_module("act", nn.ReLU())
            self.blocks.append(block)
            channels = width
        self.gates = nn.ModuleList(
            AttentionGate(spatial_dims, widths[i], widths[-1], max(8, widths[i] // 2)) for i in self.gated
        )
        self.classifier = nn.Linear(sum(widths[i] for i in self.gated) + widths[-1], num_classes)

    def _pooled(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        h = x
        for block in self.blocks:
            h = block(h)
            feats.append(h)
        g = feats[-1]  # gating signal: the coarsest features
        pooled, alphas = [], []
        for gate, i in zip(self.gates, self.gated):
            a = gate(feats[i], g)  # (B, 1, *s_l)
            dims = tuple(range(2, a.ndim))
            pooled.append((a * feats[i]).sum(dims) / a.sum(dims).clamp(min=1e-6))  # (B, C_l)
            alphas.append(a)
        pooled.append(g.mean(tuple(range(2, g.ndim))))
        return torch.cat(pooled, dim=1), alphas

    def forward_with_gates(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Logits ``(B, num_classes)`` and the gate coefficients, one ``(B, 1, *s_l)`` per gate."""
        features, alphas = self._pooled(x)
        return self.classifier(features), alphas

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self._pooled(x)[0])

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(B, sum of gated widths + widths[-1])``: gated pools and pooled ``g``."""
        return self._pooled(x)[0]


def build_for_inputs(inputs: torch.Tensor, num_classes: int) -> AttentionGatedCNN:
    """An attention-gated classifier sized for training inputs ``(N, C, *spatial)``."""
    spatial_dims = inputs.ndim - 2
    widths = (16, 32, 64, 64) if spatial_dims < 3 else (8, 16, 32, 32)
    return AttentionGatedCNN(spatial_dims, int(inputs.shape[1]), num_classes, widths=widths,
                             input_shape=tuple(inputs.shape[1:]))


def gate_modules(model: nn.Module) -> list[AttentionGate]:
    """The model's attention gates in definition order (``InputError`` if it has none)."""
    gates = [m for m in model.modules() if isinstance(m, AttentionGate)]
    if not gates:
        raise InputError("the model has no attention gates (an attention-gated architecture is needed)")
    return gates


@contextmanager
def replaced_gates(model: nn.Module, replace: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Inside the block, every gate's coefficients ``alpha`` become ``replace(alpha)``.

    For faithfulness tests in the spirit of Jain and Wallace, "Attention is not Explanation"
    (NAACL 2019): permuted coefficients (``alpha.flatten(2)[..., perm]``) or uniform ones
    (``torch.full_like(alpha, alpha.mean())``). Forward hooks on the gates' sigmoids, removed in
    a ``finally`` block.
    """
    handles = [gate.alpha.register_forward_hook(lambda _m, _i, out: replace(out)) for gate in gate_modules(model)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
