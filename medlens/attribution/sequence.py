"""Per-position attributions for sequence models: tokens through their embeddings, signals too.

Token ids are not differentiable, so for text the attribution is taken with respect to the
embedding vectors and summed per token, as Jain and Wallace (2019) and Li et al.,
"Visualizing and understanding neural models in NLP" (NAACL 2016), do. The model is run on
*features* rather than raw inputs: a packed tensor ``(B, F + 1, L)`` whose first ``F`` channels
are the per-position features (token embeddings, or the signal channels) and whose last
channel is the validity mask (1 on real positions, 0 on padding). Packing the mask into the
input lets every batch, perturbation and path point go through :mod:`medlens.core.engine`
unchanged, with the right padding per row; the gradient with respect to the mask channel is
simply ignored.

Works with any model following :class:`medlens.models.attention_rnn.AttentionModel`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medlens.core.checks import evaluation_mode
from medlens.core import engine
from medlens.attribution.explain import explain
from medlens.core.targets import TargetLike
from medlens.errors import InputError, UnknownNameError
from medlens.models.attention_rnn import is_attention_model
from medlens.types import Attribution

#: The registered methods that give per-position attributions of a sequence.
METHODS = ("gradient", "grad_x_input", "integrated_gradients")


class PackedSequenceModel(nn.Module):
    """The model as a function of packed features ``(B, F + 1, L)`` (last channel: validity)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        features, mask = packed[:, :-1], packed[:, -1] > 0.5
        states, step_mask = self.model.encode_features(features, mask)
        return self.model.classify(states, self.model.attend(states, step_mask))


def require_attention_model(model: nn.Module) -> None:
    """Raise :class:`InputError` unless ``model`` exposes the attention-model pieces."""
    if not is_attention_model(model):
        name = getattr(model, "arch", type(model).__name__)
        raise InputError(
            f"this needs an attention model (such as medlens' attention-rnn), got {name!r}: it must expose "
            "valid_mask, features, encode_features, attend and classify"
        )


def pack(model: nn.Module, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Packed features ``(B, F + 1, L)`` of inputs ``x`` (signals ``(B, C, L)`` or tokens ``(B, L)``).

    Computed without a graph: the packed tensor is the leaf that gradients are taken against.
    """
    with torch.no_grad():
        mask = model.valid_mask(x, lengths)
        features = model.features(x)
        return torch.cat([features * mask[:, None].to(features.dtype), mask[:, None].to(features.dtype)], 1)


def sequence_attributions(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike = None,
    method: str = "gradient",
    *,
    lengths: torch.Tensor | None = None,
    n_steps: int = 32,
    batch_size: int | None = None,
    memory_mb: float | None = None,
    **options: Any,
) -> Attribution:
    """Importance of each position of each sequence (each token of a report, each sample of a signal).

    The registered attribution methods run on the model seen as a function of its packed
    per-position features (:class:`PackedSequenceModel`: the embedding output for text, the
    signal for signals, plus a validity channel), and their maps are reduced over the feature
    axis. There is no second implementation of any method here.

    Parameters
    ----------
    model : nn.Module
        An attention model (:class:`medlens.models.AttentionRNN` or anything with its pieces).
    x : torch.Tensor
        ``(B, L)`` int64 token ids or ``(B, C, L)`` float signals.
    target : int, sequence, tensor, callable or None
        As in :func:`medlens.attribution.explain.explain`; ``None`` explains the predicted class.
    method : {"gradient", "grad_x_input", "integrated_gradients"}
        ``"gradient"``: Euclidean norm of the gradient of the target score with respect to
        the position's feature vector (unsigned; Simonyan et al. 2013, Li et al. 2016).
        ``"grad_x_input"``: ``sum_f x_f * d score / d x_f`` over the feature vector; for
        tokens this equals the gradient with respect to the one-hot input of the word present,
        the measure of Jain and Wallace (2019). Signed.
        ``"integrated_gradients"``: Sundararajan, Taly and Yan (ICML 2017), summed over the
        feature vector, from the all-zero feature baseline (a zero embedding, a flat zero
        signal) with the validity channel equal in input and baseline, so padding stays fixed
        along the path; the registered method's quadrature (Gauss-Legendre) with ``n_steps``
        points. Signed; per row the values add up to ``score(x) - score(baseline)`` (the gap is
        ``extras["convergence_delta"]``).
    lengths : torch.Tensor, optional
        ``(B,)`` real length of each row.
    n_steps : int
        Path points of integrated gradients.
    batch_size, memory_mb : optional
        Engine budget (see :class:`medlens.core.engine.Budget`).
    **options
        Further options of the registered method (``rule="riemann_middle"`` for integrated
        gradients, say).

    Returns
    -------
    Attribution
        ``values`` ``(B, L)``, zero on padding.
    """
    if method not in METHODS:
        raise UnknownNameError(f"unknown sequence attribution method {method!r}; available: {', '.join(METHODS)}")
    if not isinstance(n_steps, int) or n_steps < 1:
        raise InputError(f"n_steps must be a positive integer, got {n_steps!r}")
    require_attention_model(model)
    if not isinstance(x, torch.Tensor) or x.ndim not in (2, 3) or x.shape[0] == 0:
        raise InputError("the input must be a non-empty tensor of token ids (B, L) or signals (B, C, L)")
    with evaluation_mode(model):
        x = x.to(engine.model_device(model))
        packed = pack(model, x, lengths)
        if method == "integrated_gradients":
            baseline = packed.clone()
            baseline[:, :-1] = 0  # zero features, the same validity channel
            options = {"baseline": baseline, "n_steps": n_steps, **options}
        attr = explain(
            PackedSequenceModel(model), packed, target, method,
            batch_size=batch_size, memory_mb=memory_mb, **options,
        )
        per_feature = attr.values[:, :-1]  # (B, F, L); the validity channel is not a feature
        values = per_feature.norm(dim=1) if method == "gradient" else per_feature.sum(1)
        values = values * packed[:, -1]
    return Attribution(
        values=values.detach(),
        method=method,
        target=attr.target,
        params={k: v for k, v in attr.params.items() if k != "baseline"},
        seconds=attr.seconds,
        extras=attr.extras,
    )
