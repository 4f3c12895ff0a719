"""The attention weights of an attention-MIL model, one per patch, as an attribution map.

Ilse, Tomczak and Welling, "Attention-based Deep Multiple Instance Learning" (ICML 2018); used
on whole slides by Tomita et al. (JAMA Network Open 2019). The weight ``a_n`` of patch ``n``
(summing to 1 over the image's patches) is painted over the patch's pixels, so the map sums to
``patch ** d`` times 1 over the image; ``per_patch=True`` returns the weights themselves. One
forward pass per chunk, through the engine. Like the attention gates, the weights are the same
for every class: ``target`` is ignored. Whether they agree with what the classifier uses is
measured in ``benchmarks/patch_attention.py`` (share on the evidence patches, agreement with
gradients).
"""

from __future__ import annotations

import torch
from torch import nn

from medlens.attribution.registry import register
from medlens.core import engine
from medlens.core.engine import Budget
from medlens.core.targets import Target
from medlens.errors import InputError
from medlens.models.mil import PatchAttentionMIL, from_patches


class _Weights(nn.Module):
    """The MIL model with its attention weights ``(B, N)`` as output (for the engine)."""

    def __init__(self, model: PatchAttentionMIL) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_with_attention(x)[1]


def _mil(model: nn.Module) -> PatchAttentionMIL:
    for m in model.modules():
        if isinstance(m, PatchAttentionMIL):
            return m
    raise InputError("the model has no patch attention (a patch-attention-mil model is needed)")


@register(
    "patch_attention",
    needs_gradients=False,
    summary="attention-MIL weight of each patch, painted over the patch",
    reference="Ilse et al. 2018",
    requires="patch attention",
)
def patch_attention(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    per_patch: bool = False,
    budget: Budget = Budget(),
) -> torch.Tensor:
    """Attention-MIL weights.

    Parameters
    ----------
    model : nn.Module
        A :class:`~medlens.models.mil.PatchAttentionMIL` (or a module holding one, which must
        be the model that is run).
    x : torch.Tensor
        ``(B, C, *spatial)`` with sides multiple of the model's patch.
    target : Target
        Ignored (attention is class-agnostic).
    per_patch : bool
        Return ``(B, N)`` weights in row-major grid order instead of a map.

    Returns
    -------
    torch.Tensor
        ``(B, 1, *spatial)``, constant on each patch, each image's patch values summing to 1;
        or ``(B, N)``.
    """
    mil = _mil(model)
    weights = engine.run(_Weights(mil), len(x), x, mode="forward", budget=budget).outputs.to(x.dtype)
    if per_patch:
        return weights
    return from_patches(weights, mil.grid(x.shape[2:]), mil.patch)
