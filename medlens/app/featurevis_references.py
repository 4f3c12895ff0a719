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


def training_cases(request: Any, model: nn.Module, shape: tuple[int, ...]) -> torch.Tensor:
    """The train split of ``request.data`` (its first ``--limit`` cases) in the model's dtype,
    checked against the model's input shape."""
    from medlens.data.cases import labelled_set
    from medlens.errors import InputError

    inputs = labelled_set(request.data, "train", memory_mb=request.memory_mb).inputs
    if request.limit:
        inputs = inputs[: request.limit]
    if tuple(inputs.shape[1:]) != tuple(shape):
        raise InputError(f"the cases of {request.data!r} have shape {tuple(inputs.shape[1:])}, "
                         f"the model takes {tuple(shape)}")
    return inputs.to(next((p.dtype for p in model.parameters()), torch.float32))


def channel_references(request: Any, model: nn.Module, cases: torch.Tensor, channels: list[int]
                       ) -> list[ReferenceCases]:
    """Per channel of ``request.layer``, its ``request.references`` cases with the most
    relevance for each case's predicted class, with their conditional maps."""
    from medlens.attribution.lrp import reference_cases_of

    return reference_cases_of(model, cases, request.layer, channels, request.references,
                              composite=request.composite, batch_size=request.batch_size,
                              memory_mb=request.memory_mb)


def summary_rows(refs: list[ReferenceCases]) -> list[list[dict]]:
    """Per channel: ``[{"case", "relevance"}]`` of its reference cases (``case``: row of the train split)."""
    return [[{"case": int(i), "relevance": float(r)} for i, r in zip(ref.indices, ref.relevance)] for ref in refs]
