"""Relevance maximisation beside activation maximisation (``medlens featurevis --data``).

For each rendered channel of a layer, the training cases whose decision that channel (read as a
concept) carried the most LRP relevance for, with their conditional relevance maps (concept
relevance propagation, Achtibat et al. 2023: :func:`medlens.attribution.lrp.reference_cases_of`).
The rendered input shows what excites a channel; the reference cases show where, in real cases,
the channel mattered for the decision.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medlens.attribution.lrp.concepts import ReferenceCases

#: objectives whose units are channels of a layer (a neuron is a position of a channel)
CHANNEL_OBJECTIVES = ("channel", "neuron")


def check_request(request: Any) -> None:
    """Refuse ``--data`` options that cannot work, before any rendering."""
    from medlens.errors import InputError

    if request.data is None:
        return
    if request.objective not in CHANNEL_OBJECTIVES:
        raise InputError(f"--data shows the reference cases of channels: it needs --objective channel or neuron, "
                         f"not {request.objective}")
    if request.references < 1:
        raise InputError(f"--references must be at least 1, got {request.references}")
    from medlens.attribution.lrp import composite_named

    composite_named(request.composite)  # an unknown name is refused now, not after the rendering


def training_cases(request: Any, meta: dict[str, Any], model: nn.Module, shape: tuple[int, ...]) -> Any:
    """The reference cases of ``request.data`` (:func:`medlens.app.reference_cases.reference_sets`:
    a data set's train split, or a folder of scans or records read through the model's recipe; at
    most ``--limit``, a folder's others never read) in the model's dtype, checked against the
    model's input shape: a :class:`~medlens.app.reference_cases.ReferenceSet`."""
    import dataclasses

    from medlens.app.reference_cases import reference_sets
    from medlens.errors import InputError

    chosen, _ = reference_sets(request.data, meta, labels=request.labels, recipe=request.recipe,
                               show_identifiers=request.show_identifiers, memory_mb=request.memory_mb, limit=request.limit)
    if tuple(chosen.inputs.shape[1:]) != tuple(shape):
        raise InputError(f"the cases of --data have shape {tuple(chosen.inputs.shape[1:])}, the model takes {tuple(shape)}")
    return dataclasses.replace(chosen, inputs=chosen.inputs.to(next((p.dtype for p in model.parameters()), torch.float32)))


def channel_references(request: Any, model: nn.Module, cases: torch.Tensor, channels: list[int]
                       ) -> list[ReferenceCases]:
    """Per channel of ``request.layer``, its ``request.references`` cases with the most
    relevance for each case's predicted class, with their conditional maps."""
    from medlens.attribution.lrp import reference_cases_of

    return reference_cases_of(model, cases, request.layer, channels, request.references,
                              composite=request.composite, batch_size=request.batch_size,
                              memory_mb=request.memory_mb)


def summary_rows(refs: list[ReferenceCases], names: list[str] | None = None) -> list[list[dict]]:
    """Per channel: ``[{"case", "relevance"}]`` of its reference cases (``case``: row of the train
    split, or a folder's case id from ``names``)."""
    return [[{"case": int(i) if names is None else names[int(i)], "relevance": float(r)}
             for i, r in zip(ref.indices, ref.relevance)] for ref in refs]
