"""Concepts of a layer: conditional relevance and relevance maximisation (CRP).

Achtibat et al. (2023) read a channel of a layer as a concept: its *conditional* relevance map
shows where in an input the concept mattered for the decision, and *relevance maximisation*
finds the reference cases: the cases of a data set where the concept carried the most
relevance for the decision (rather than the largest activation, as activation maximisation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch
from torch import nn

from medlens.attribution.lrp.composites import composite_named
from medlens.attribution.lrp.method import channel_masks, concept_relevance, relevance
from medlens.core.engine import Budget
from medlens.core.hooks import layer_name, resolve_layer
from medlens.core.targets import Target, TargetLike, to_target


def _predicted(output: torch.Tensor) -> torch.Tensor:
    return output.max(dim=1).values


def _target(target: TargetLike, n: int) -> Target:
    """``None``: each case's predicted class (its largest score), with no extra model pass."""
    if target is None:
        return Target(score_fn=_predicted)
    return to_target(target, None, batch=n)


def conditional_relevance(
    model: nn.Module, x: torch.Tensor, target: TargetLike = None, *, layer: nn.Module | str,
    channels: int | Sequence[int] | torch.Tensor, composite: Any = "epsilon-plus",
    batch_size: int | None = None, memory_mb: float | None = None,
) -> torch.Tensor:
    """LRP relevance of ``x`` for the target, conditioned on ``channels`` of ``layer``.

    Parameters
    ----------
    model : nn.Module
    x : torch.Tensor
        ``(B, C, *spatial)`` (1D, 2D or 3D).
    target : int, sequence, tensor, callable or None
        ``None``: each sample's predicted class.
    layer : nn.Module or str
    channels : int, sequence of int or (B, C_layer) tensor
        One set of channels for every sample, or a 0/1 mask per sample. Conditioning on all
        channels gives the plain LRP map; maps of disjoint sets add up to the map of their union.
    composite : str, Composite or dict
        As for the ``lrp`` method.

    Returns
    -------
    torch.Tensor
        ``(B, C, *spatial)``.
    """
    module = resolve_layer(model, layer)
    was_training = model.training
    model.eval()
    try:
        tgt = _target(target, len(x))
        n_channels = _channels_of(model, module, x)
        masks = channel_masks(channels, len(x), n_channels, x.dtype)
        return relevance(model, x, tgt, composite_named(composite), Budget(batch_size, memory_mb), layer=module,
                         masks=masks)
    finally:
        model.train(was_training)


def _channels_of(model: nn.Module, module: nn.Module, x: torch.Tensor) -> int:
    from medlens.attribution.lrp.method import _out_channels

    return _out_channels(model, module, x)


@dataclass
class ReferenceCases:
    """The cases of a data set where a concept (a channel of a layer) is most relevant.

    Attributes
    ----------
    layer : str
    channel : int
    indices : torch.Tensor
        ``(k,)`` rows of the data, most relevant first.
    relevance : torch.Tensor
        ``(k,)`` the concept's relevance in each (its layer relevance summed over space).
    maps : torch.Tensor
        ``(k, C, *spatial)`` their conditional relevance maps (:func:`conditional_relevance`).
    all_relevance : torch.Tensor
        ``(N,)`` the concept's relevance in every case.
    """

    layer: str
    channel: int
    indices: torch.Tensor
    relevance: torch.Tensor
    maps: torch.Tensor
    all_relevance: torch.Tensor


def reference_cases(
    model: nn.Module, data: torch.Tensor, layer: nn.Module | str, channel: int, k: int = 8, *,
    target: TargetLike = None, composite: Any = "epsilon-plus",
    batch_size: int | None = None, memory_mb: float | None = None,
) -> ReferenceCases:
    """Relevance maximisation: the ``k`` cases of ``data`` whose decision the concept
    ``channel`` of ``layer`` carries most relevance for, with their conditional maps.

    Parameters
    ----------
    data : torch.Tensor
        ``(N, C, *spatial)`` cases (training cases, typically).
    target : optional
        The explained score; default each case's predicted class.
    """
    module = resolve_layer(model, layer)
    budget = Budget(batch_size, memory_mb)
    comp = composite_named(composite)
    was_training = model.training
    model.eval()
    try:
        tgt = _target(target, len(data))
        at_layer = relevance(model, data, tgt, comp, budget, layer=module)
        scores = concept_relevance(at_layer)
        if not 0 <= channel < scores.shape[1]:
            raise ValueError(f"channel must lie in 0..{scores.shape[1] - 1}, got {channel}")
        per_case = scores[:, channel]
        order = torch.argsort(per_case, descending=True, stable=True)[: min(k, len(data))]
        picked_target = tgt.take(order)
        masks = channel_masks(channel, len(order), scores.shape[1], data.dtype)
        maps = relevance(model, data[order], picked_target, comp, budget, layer=module, masks=masks)
    finally:
        model.train(was_training)
    return ReferenceCases(layer_name(model, module), channel, order, per_case[order], maps, per_case)
