"""Gradient-weighted attention relevance: Chefer, Gur and Wolf, "Generic Attention-model
Explainability for Interpreting Bi-Modal and Encoder-Decoder Transformers" (ICCV 2021), the
gradient-times-attention rule that simplifies their "Transformer Interpretability Beyond
Attention Visualization" (CVPR 2021).

Relevance starts as the identity, ``R = I`` (each token is its own source), and each attention
layer, in execution order, adds what it mixes in, weighted by how much the target score
depends on it: ``Ā_l = E_h[(∇A_l ⊙ A_l)^+]`` (the positive part of gradient times attention,
averaged over the heads) and ``R <- R + Ā_l R``. As with rollout, the class token's row over
the patch tokens is the map (the mean of all rows without a class token), laid on the patch
grid and upsampled to the input. Unlike rollout the map is class-specific: the gradients are
those of the target score (a class logit, or a region's summed segmentation output through
:class:`medlens.core.targets.ReducedOutput`), all layers' from one backward pass.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from medlens.attribution.registry import register
from medlens.attribution.transformer.attention_maps import capture_attention
from medlens.attribution.transformer.rollout import check_maps, grid_of, patch_scores, to_input
from medlens.core import engine
from medlens.core.engine import Budget
from medlens.core.targets import Target
from medlens.errors import InputError


def gradient_weighted_relevance(maps: Sequence[torch.Tensor], gradients: Sequence[torch.Tensor | None]) -> torch.Tensor:
    """Chefer's relevance ``(B, N, N)`` from per-layer maps and their gradients ``(B, heads, N, N)``.

    A layer whose gradient is ``None`` (the score does not depend on it, e.g. a block after
    the class token was read) adds nothing.
    """
    n = check_maps(maps)
    eye = torch.eye(n, dtype=maps[0].dtype, device=maps[0].device)
    relevance = eye.expand(maps[0].shape[0], n, n)
    for attention, grad in zip(maps, gradients):
        if grad is None:
            continue
        weighted = (grad * attention).clamp(min=0).mean(dim=1)
        relevance = relevance + weighted @ relevance
    return relevance


@register(
    "transformer_attribution",
    needs_gradients=True,
    layer_resolution=True,
    summary="attention weighted by its gradient (positive part), accumulated through the layers",
    reference="Chefer, Gur and Wolf 2021",
    requires="attention layers",
)
def transformer_attribution(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    upsample: bool = True,
    budget: Budget = Budget(),
) -> torch.Tensor:
    """Gradient-weighted attention relevance of a vision transformer (Chefer et al. 2021).

    Parameters
    ----------
    model : nn.Module
        A model with readable attention layers (MONAI's ViT or UNETR, ``nn.MultiheadAttention``
        encoders, medlens's ``vit``).
    x : torch.Tensor
        ``(B, C, *spatial)``, 2D or 3D.
    target : Target
        The score to explain.
    upsample : bool
        ``True``: (bi/tri)linear upsampling to ``(B, 1, *spatial)``; ``False``: the patch grid.

    Returns
    -------
    torch.Tensor
        Non-negative map.
    """
    maps: list[torch.Tensor] = []
    with capture_attention(model, gradients=True) as record:

        def consume(start, stop, outputs, grads, aux):
            if all(g is None for g in record.gradients):
                raise InputError("the target score does not depend on any attention layer")
            relevance = gradient_weighted_relevance(record.maps, record.gradients)
            grid = grid_of(model, relevance.shape[-1], x)
            maps.append(to_input(patch_scores(relevance, grid), grid, x, upsample))
            record.clear()

        engine.run(model, len(x), x, mode="gradient", target=target, consume=consume, budget=budget)
    return torch.cat(maps)
