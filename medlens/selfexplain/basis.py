"""Prediction basis: the training cases the model saw as most alike.

Lee et al., "An explainable deep-learning algorithm for the detection of acute intracranial
haemorrhage from small datasets", Nature Biomedical Engineering 3 (2019): beside each
prediction the system shows a *prediction basis*, the training images closest to the case in the
network's feature space, with their labels and attention maps, so that a radiologist can judge
whether the model's notion of "similar" is clinically sound.

Here a case is embedded with the model (penultimate features, ``model.embed``, or a layer's
spatially averaged output), compared with every training case by the cosine similarity of the
features *centred on the training mean*, and the ``k`` most similar training cases are returned
with their labels, the model's predictions, their similarity, their distance relative to a
typical training case's nearest neighbour and their own saliency maps (one batched
:func:`medlens.explain` call).

Why centred: after a ReLU every feature is non-negative and shares a large common component, so
the plain cosine of any two cases is high (median 0.77 between PneumoniaMNIST training cases for
the demo CNN, 0.997-0.999 for every retrieved neighbour): the scores could not tell neighbours
apart. Centred, unrelated cases score near or below 0 and the scale spans [-1, 1].
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from medlens.core.engine import Budget
from medlens.core.targets import model_probabilities
from medlens.errors import InputError
from medlens.selfexplain.embedding import embed, outputs


@dataclass(frozen=True)
class EmbeddingIndex:
    """Training cases embedded once, for repeated retrieval.

    Attributes
    ----------
    embeddings : torch.Tensor
        ``(N, D)`` unit-norm features of the training cases.
    labels : torch.Tensor
        ``(N,)`` their labels.
    predictions : torch.Tensor
        ``(N,)`` the model's predicted class for each.
    layer : str or None
        Where the features come from (``None``: ``model.embed``).
    centre : torch.Tensor or None
        ``(D,)`` the training cases' mean feature, subtracted before the cosine (``None``: not
        centred, fewer than two cases).
    features : torch.Tensor or None
        ``(N, D)`` the centred features (for distances).
    typical_distance : float
        Median distance of a training case to its nearest other training case (centred
        features; at most 1000 cases, evenly spaced): the unit of :attr:`PredictionBasis.relative_distance`.
    """

    embeddings: torch.Tensor
    labels: torch.Tensor
    predictions: torch.Tensor
    layer: str | None = None
    centre: torch.Tensor | None = None
    features: torch.Tensor | None = None
    typical_distance: float = float("nan")

    def __len__(self) -> int:
        return len(self.embeddings)


@dataclass(frozen=True)
class PredictionBasis:
    """The ``k`` nearest training cases of each of ``Q`` queries.

    Attributes
    ----------
    indices : torch.Tensor
        ``(Q, k)`` int64 row in the training set, most similar first.
    similarity : torch.Tensor
        ``(Q, k)`` cosine similarity of the centred features, in [-1, 1].
    labels, predictions : torch.Tensor
        ``(Q, k)`` label and predicted class of each retrieved case.
    query_predictions : torch.Tensor
        ``(Q,)`` predicted class of each query.
    query_probabilities : torch.Tensor
        ``(Q, K)``: a softmax over classes, or a multi-label model's sigmoid per finding.
    saliency : torch.Tensor or None
        ``(Q, k, C', *spatial)``: each retrieved case's saliency map for its own predicted
        class (``None`` when ``saliency=False``).
    query_saliency : torch.Tensor or None
        ``(Q, C', *spatial)``: the queries' maps for their predicted classes.
    method : str
        Attribution method of the maps.
    relative_distance : torch.Tensor or None
        ``(Q, k)`` distance to each retrieved case over the index's typical nearest-neighbour
        distance (1: as close as training cases usually are to their nearest neighbour).
    same_image : torch.Tensor or None
        ``(Q, k)`` bool: the retrieved case is the query's image itself, element for element
        (within half an 8-bit grey level of the input range): the case, or a copy of it, is in
        the training data (a leak across splits, or a duplicate, possibly with another label).
    same_patient : torch.Tensor or None
        ``(Q, k)`` bool: the retrieved case is of the query's patient (a follow-up scan, another
        view), as the caller knows it (:mod:`medlens.data.patients`); ``None`` where no patient
        identity is known.
    """

    indices: torch.Tensor
    similarity: torch.Tensor
    labels: torch.Tensor
    predictions: torch.Tensor
    query_predictions: torch.Tensor
    query_probabilities: torch.Tensor
    saliency: torch.Tensor | None
    query_saliency: torch.Tensor | None
    method: str
    relative_distance: torch.Tensor | None = None
    same_image: torch.Tensor | None = None
    same_patient: torch.Tensor | None = None

    def label_agreement(self) -> torch.Tensor:
        """``(Q,)`` share of retrieved cases whose label is the query's predicted class."""
        return (self.labels == self.query_predictions[:, None]).double().mean(1)


def build_index(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    *,
    layer: nn.Module | str | None = None,
    batch_size: int | None = None, memory_mb: float | None = None,
) -> EmbeddingIndex:
    """Embed the training cases ``inputs`` ``(N, C, *spatial)`` with labels ``(N,)``."""
    budget = Budget(batch_size, memory_mb)
    if len(labels) != len(inputs):
        raise InputError(f"got {len(labels)} labels for {len(inputs)} training cases")
    features = embed(model, inputs, layer=layer, **budget.kwargs())
    # probabilities: a single-logit model's class is 1 where its sigmoid passes 0.5 (argmax of one column is always 0)
    preds = model_probabilities(outputs(model, inputs, **budget.kwargs()), model).argmax(1).cpu()
    name = layer if isinstance(layer, str) or layer is None else type(layer).__name__
    features = features.double().cpu()
    centre = features.mean(0) if len(features) > 1 else None
    centred = features - centre if centre is not None else features
    return EmbeddingIndex(nn.functional.normalize(centred, dim=1), labels.cpu(), preds, name, centre, centred,
                          _typical_distance(centred))


def _typical_distance(features: torch.Tensor, at_most: int = 1000) -> float:
    """Median distance of a case to its nearest other case, over at most ``at_most`` evenly spaced cases."""
    n = len(features)
    if n < 2:
        return float("nan")
    rows = torch.linspace(0, n - 1, min(n, at_most)).round().long().unique()
    d = torch.cdist(features[rows], features)  # (m, N)
    d[torch.arange(len(rows)), rows] = float("inf")  # not itself
    return float(d.min(1).values.median())


def nearest(index: EmbeddingIndex, query_features: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine similarities ``(Q, k)`` and indices ``(Q, k)`` of the ``k`` nearest indexed cases.

    Ties are broken by the lower index (a stable sort), so the result is deterministic.
    """
    if not 1 <= k <= len(index):
        raise InputError(f"k must lie in 1..{len(index)} (the number of training cases), got {k}")
    if query_features.shape[1] != index.embeddings.shape[1]:
        raise InputError(
            f"query features have {query_features.shape[1]} dimensions, the index "
            f"{index.embeddings.shape[1]}: build both with the same model and layer"
        )
    q = query_features.double().cpu()
    if index.centre is not None:
        q = q - index.centre
    sim = nn.functional.normalize(q, dim=1) @ index.embeddings.T  # (Q, N)
    order = torch.sort(sim, dim=1, descending=True, stable=True).indices[:, :k]
    return sim.gather(1, order), order


def prediction_basis(
    model: nn.Module,
    queries: torch.Tensor,
    train_inputs: torch.Tensor,
    train_labels: torch.Tensor | None = None,
    *,
    k: int = 5,
    layer: nn.Module | str | None = None,
    index: EmbeddingIndex | None = None,
    saliency: bool = True,
    method: str = "gradient",
    batch_size: int | None = None, memory_mb: float | None = None,
    **method_options: Any,
) -> PredictionBasis:
    """Retrieve the ``k`` training cases most similar to each query in the model's embedding.

    Parameters
    ----------
    model : nn.Module
        A classifier with ``embed`` (the medlens CNN) or any classifier with ``layer=``.
    queries : torch.Tensor
        ``(Q, C, *spatial)`` cases to explain (1D, 2D or 3D).
    train_inputs : torch.Tensor
        ``(N, C, *spatial)`` the training cases to retrieve from.
    train_labels : torch.Tensor
        ``(N,)`` their labels (may be omitted when ``index`` is given).
    k : int
        Number of cases to retrieve per query.
    layer : nn.Module, str or None
        Embedding layer (see :class:`medlens.selfexplain.embedding.EmbeddingModel`).
    index : EmbeddingIndex, optional
        Precomputed :func:`build_index` of ``train_inputs`` (same model and layer), to embed the
        training set once for many queries.
    saliency : bool
        Also compute the saliency maps of the queries and retrieved cases.
    method : str
        Attribution method of the maps; ``method_options`` are passed to it (``seed=`` for
        random methods).

    Returns
    -------
    PredictionBasis
    """
    budget = Budget(batch_size, memory_mb)
    from medlens.attribution.explain import explain
    from medlens.core.checks import check_input

    queries = check_input(queries)
    train_inputs = check_input(train_inputs)
    if index is None:
        if train_labels is None:
            raise InputError("prediction_basis needs train_labels (or a prebuilt index)")
        index = build_index(model, train_inputs, train_labels, layer=layer, **budget.kwargs())
    elif len(index) != len(train_inputs):
        raise InputError(f"the index holds {len(index)} cases but train_inputs has {len(train_inputs)}")
    probs = model_probabilities(outputs(model, queries, **budget.kwargs()), model).cpu()  # a finding: its own sigmoid
    query_features = embed(model, queries, layer=layer, **budget.kwargs())
    similarity, indices = nearest(index, query_features, k)
    relative = None
    if index.features is not None and index.typical_distance > 0:
        q = query_features.double().cpu() - (index.centre if index.centre is not None else 0)
        relative = (q[:, None] - index.features[indices]).norm(dim=-1) / index.typical_distance  # (Q, k)
    same = same_images(queries, train_inputs, indices)
    sal = query_sal = None
    if saliency:
        unique, inverse = torch.unique(indices.flatten(), return_inverse=True)
        batch = torch.cat([queries, train_inputs[unique].to(queries.device, queries.dtype)])
        values = explain(
            model, batch, method=method, batch_size=budget.batch_size, memory_mb=budget.memory_mb, **method_options
        ).values.cpu()
        query_sal = values[: len(queries)]
        sal = values[len(queries):][inverse].reshape(*indices.shape, *values.shape[1:])
    return PredictionBasis(
        indices=indices,
        similarity=similarity,
        labels=index.labels[indices],
        predictions=index.predictions[indices],
        query_predictions=probs.argmax(1),
        query_probabilities=probs,
        saliency=sal,
        query_saliency=query_sal,
        method=method,
        relative_distance=relative,
        same_image=same,
    )


def same_images(queries: torch.Tensor, train_inputs: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """``(Q, k)`` whether each retrieved training case equals its query element for element, to
    half an 8-bit grey level of the two inputs' joint range (an identical image saved twice)."""
    q = queries.detach().double().cpu()
    retrieved = train_inputs[indices.flatten()].detach().double().cpu().reshape(*indices.shape, *q.shape[1:])
    values = torch.cat([q.flatten(), retrieved.flatten()])
    span = float(values.max() - values.min()) or 1.0
    diff = (retrieved - q[:, None]).abs().flatten(2).amax(2)  # (Q, k)
    return diff <= 0.5 / 255 * span
