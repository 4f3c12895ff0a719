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
from medlens.core.checks import evaluation_mode
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
    with evaluation_mode(model):  # every module's own training flag is restored after
        tgt = _target(target, len(x))
        n_channels = _channels_of(model, module, x)
        masks = channel_masks(channels, len(x), n_channels, x.dtype)
        return relevance(model, x, tgt, composite_named(composite), Budget(batch_size, memory_mb), layer=module,
                         masks=masks)


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
    ``channel`` of ``layer`` carries most relevance for, with their conditional maps
    (:func:`reference_cases_of` for one channel)."""
    return reference_cases_of(model, data, layer, [channel], k, target=target, composite=composite,
                              batch_size=batch_size, memory_mb=memory_mb)[0]


def reference_cases_of(
    model: nn.Module, data: torch.Tensor, layer: nn.Module | str, channels: Sequence[int], k: int = 8, *,
    target: TargetLike = None, composite: Any = "epsilon-plus",
    batch_size: int | None = None, memory_mb: float | None = None,
) -> list[ReferenceCases]:
    """Relevance maximisation for several concepts (channels) of one layer at once.

    One LRP pass over ``data`` gives every channel's relevance in every case (summed over space
    chunk by chunk: ``(N, C)`` is kept, never the layer's maps); one more pass over the chosen
    cases, each row conditioned on its own channel, gives the conditional maps of all channels.

    Parameters
    ----------
    data : torch.Tensor
        ``(N, C, *spatial)`` cases (training cases, typically).
    channels : sequence of int
        Channels of ``layer``.
    k : int
        Reference cases per channel (fewer when ``data`` has fewer cases).
    target : optional
        The explained score; default each case's predicted class.

    Returns
    -------
    list of ReferenceCases
        One per channel, in the order given.
    """
    from medlens.errors import InputError

    if k < 1:
        raise InputError(f"the number of reference cases must be at least 1, got {k}")
    if not channels or not len(data):
        return []
    module = resolve_layer(model, layer)
    budget = Budget(batch_size, memory_mb)
    comp = composite_named(composite)
    with evaluation_mode(model):
        tgt = _target(target, len(data))
        scores = relevance(model, data, tgt, comp, budget, layer=module, reduce=concept_relevance)  # (N, C)
        bad = [c for c in channels if not 0 <= c < scores.shape[1]]
        if bad:
            raise InputError(f"channel {bad[0]} does not exist: layer {layer_name(model, module)!r} has "
                             f"{scores.shape[1]} channels")
        picks = [torch.argsort(scores[:, c], descending=True, stable=True)[: min(k, len(data))] for c in channels]
        rows = torch.cat(picks)
        masks = torch.zeros(len(rows), scores.shape[1], dtype=data.dtype)
        masks[torch.arange(len(rows)), torch.tensor(channels).repeat_interleave(len(picks[0]))] = 1
        maps = relevance(model, data[rows], tgt.take(rows), comp, budget, layer=module, masks=masks)
    name = layer_name(model, module)
    return [ReferenceCases(name, c, order, scores[order, c], m, scores[:, c])
            for c, order, m in zip(channels, picks, maps.split(len(picks[0])))]
