"""A model's embedding space: the features a self-explaining method reads.

Two methods of this package look inside a trained classifier: the prediction basis retrieves
training cases that are close in the model's embedding space, and the concept autoencoder
compresses that space into a few concepts. Both read the features through :class:`EmbeddingModel`,
a wrapper whose forward returns the features, so that the batched engine runs it like any model
(chunked under a memory budget, gradients available for concept saliency).
"""

from __future__ import annotations

import torch
from torch import nn

from medlens.core import engine
from medlens.core.engine import Budget
from medlens.core.hooks import capture, resolve_layer
from medlens.errors import InputError


class EmbeddingModel(nn.Module):
    """``x -> features``: the model's embedding as a model of its own.

    Parameters
    ----------
    model : nn.Module
        The classifier.
    layer : nn.Module, str or None
        ``None`` reads ``model.embed(x)`` (the penultimate features of the medlens CNN);
        a layer (or its dotted name) reads that layer's output, averaged over its spatial axes
        (a ``(B, C, *spatial)`` activation becomes ``(B, C)``; a ``(B, C)`` one is kept).

    Input ``(B, C, *spatial)``; output ``(B, D)``.
    """

    def __init__(self, model: nn.Module, layer: nn.Module | str | None = None) -> None:
        super().__init__()
        if layer is None and not callable(getattr(model, "embed", None)):
            raise InputError(
                f"{type(model).__name__} has no embed() method: pass layer= (a layer name such as "
                "the last convolution block) to read its features"
            )
        self.model = model
        # Store the module itself, not its name: a name would be resolved on every call.
        self.layer = None if layer is None else resolve_layer(model, layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.layer is None:
            return self.model.embed(x).flatten(1)
        # detach=False: concept saliency differentiates through these features.
        with capture(self.model, self.layer, detach=False) as record:
            self.model(x)
        act = record.activation
        if act is None:
            raise InputError("the chosen layer was not run by the model's forward pass")
        return act.flatten(2).mean(2) if act.ndim > 2 else act.reshape(len(act), -1)


def embed(
    model: nn.Module, x: torch.Tensor, *, layer: nn.Module | str | None = None, batch_size: int | None = None, memory_mb: float | None = None
) -> torch.Tensor:
    """Features ``(N, D)`` of the inputs ``x`` ``(N, C, *spatial)`` in the model's embedding space.

    The model runs in eval mode through the batched engine (see :class:`EmbeddingModel` for
    ``layer``).
    """
    budget = Budget(batch_size, memory_mb)
    from medlens.core.checks import check_input, evaluation_mode

    x = check_input(x)
    features = EmbeddingModel(model, layer)
    with evaluation_mode(features):
        return engine.forward(features, x.to(engine.model_device(model)), budget)


def outputs(model: nn.Module, x: torch.Tensor, batch_size: int | None = None, memory_mb: float | None = None) -> torch.Tensor:
    """The model's outputs ``(N, K)`` in eval mode, through the engine."""
    budget = Budget(batch_size, memory_mb)
    from medlens.core.checks import evaluation_mode

    with evaluation_mode(model):
        return engine.forward(model, x.to(engine.model_device(model)), budget)
