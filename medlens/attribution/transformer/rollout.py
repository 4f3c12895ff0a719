"""Attention rollout: Abnar and Zuidema, "Quantifying Attention Flow in Transformers" (ACL 2020).

Per attention layer ``l`` the heads are fused (mean by default), the identity is added for the
residual connection and each row renormalised to sum to one,
``Â_l = (Ā_l + I) / rowsum(Ā_l + I)``; the layers are multiplied through from the first,
``R = Â_L ... Â_2 Â_1``. Row ``i`` of ``R`` says how much each input token flowed into token
``i`` at the top. The class token's row over the patch tokens is the map (without a class
token, the mean of all rows); the patch values are laid on the patch grid
(:mod:`medlens.attribution.transformer.tokens`) and upsampled to the input.

Rollout reads only the attention: the map is the same for every class (``target`` is ignored)
and costs one forward pass.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from medlens.attribution.registry import register
from medlens.attribution.transformer.attention_maps import capture_attention
from medlens.attribution.transformer.tokens import TokenGrid, patch_map, patch_size, token_grid
from medlens.core import engine
from medlens.core.engine import Budget
from medlens.core.resize import upsample_to
from medlens.core.targets import Target
from medlens.errors import InputError, UnknownNameError

HEAD_FUSIONS = ("mean", "max", "min")


def fuse_heads(attention: torch.Tensor, how: str = "mean") -> torch.Tensor:
    """``(B, heads, N, N)`` -> ``(B, N, N)``: mean, max or min over the heads."""
    if how == "mean":
        return attention.mean(dim=1)
    if how == "max":
        return attention.amax(dim=1)
    if how == "min":
        return attention.amin(dim=1)
    raise UnknownNameError(f"unknown head_fusion {how!r}; choose one of {', '.join(HEAD_FUSIONS)}")


def check_maps(maps: Sequence[torch.Tensor]) -> int:
    """The common token count ``N`` of ``(B, heads, N, N)`` self-attention maps."""
    if not maps:
        raise InputError("no attention layer ran on the way from the input to the output")
    n = maps[0].shape[-1]
    for a in maps:
        if a.ndim != 4 or a.shape[-2:] != (n, n):
            raise InputError(
                f"attention maps of shapes {tuple(maps[0].shape)} and {tuple(a.shape)}: rollout needs self-attention "
                "over the same tokens in every layer"
            )
    return n


def rollout(maps: Sequence[torch.Tensor], head_fusion: str = "mean") -> torch.Tensor:
    """Attention rollout ``(B, N, N)`` of per-layer maps ``(B, heads, N, N)`` in execution order."""
    n = check_maps(maps)
    eye = torch.eye(n, dtype=maps[0].dtype, device=maps[0].device)
    joint = eye.expand(maps[0].shape[0], n, n)
    for attention in maps:
        a = fuse_heads(attention, head_fusion) + eye
        a = a / a.sum(dim=-1, keepdim=True)
        joint = a @ joint
    return joint


def patch_scores(relevance: torch.Tensor, grid: TokenGrid) -> torch.Tensor:
    """``(B, n_patches)`` from token relevance ``(B, N, N)``: the first (class) token's row over
    the patch tokens, or the mean of all rows when there is no extra token."""
    rows = relevance[:, 0] if grid.prefix else relevance.mean(dim=1)
    return rows[:, grid.prefix:]


def grid_of(model: nn.Module, n_tokens: int, x: torch.Tensor) -> TokenGrid:
    """The patch grid of ``n_tokens`` tokens of the input ``x`` (using the model's patch
    embedding convolution, if any, to settle the patch size)."""
    return token_grid(n_tokens, x.shape[2:], patch_size(model))


def to_input(values: torch.Tensor, grid: TokenGrid, x: torch.Tensor, upsample: bool) -> torch.Tensor:
    """Per-patch values laid on the grid, ``(B, 1, *grid)``, upsampled to ``x``'s size if asked."""
    maps = patch_map(values, grid).to(x.dtype)
    return upsample_to(maps, x.shape[2:]) if upsample else maps


@register(
    "attention_rollout",
    needs_gradients=False,
    layer_resolution=True,
    summary="attention multiplied through the layers with the residual identity (class token's row)",
    reference="Abnar and Zuidema 2020",
    requires="attention layers",
)
def attention_rollout(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    head_fusion: str = "mean",
    upsample: bool = True,
    budget: Budget = Budget(),
) -> torch.Tensor:
    """Attention rollout of a vision transformer.

    Parameters
    ----------
    model : nn.Module
        A model with readable attention layers
        (:func:`~medlens.attribution.transformer.attention_maps.attention_layers`): MONAI's ViT
        or UNETR, ``nn.MultiheadAttention``-based encoders, medlens's ``vit``.
    x : torch.Tensor
        ``(B, C, *spatial)``, 2D or 3D.
    target : Target
        Ignored: rollout is the same for every class.
    head_fusion : {"mean", "max", "min"}
        How the heads of a layer are fused (the paper averages them).
    upsample : bool
        ``True``: (bi/tri)linear upsampling to ``(B, 1, *spatial)``; ``False``: the patch grid.

    Returns
    -------
    torch.Tensor
        Non-negative map; with a class token, its patch values are the class token's share of
        flow from each patch (at most 1 in all).
    """
    fuse_heads(torch.zeros(1, 1, 1, 1), head_fusion)  # an unknown name fails before any pass
    maps: list[torch.Tensor] = []
    with capture_attention(model) as record:

        def consume(start, stop, outputs, grads, aux):
            joint = rollout(record.maps, head_fusion)
            grid = grid_of(model, joint.shape[-1], x)
            maps.append(to_input(patch_scores(joint, grid), grid, x, upsample))
            record.clear()

        engine.run(model, len(x), x, mode="forward", consume=consume, budget=budget)
    return torch.cat(maps)
