"""Concept autoencoder: a trained network's features explained by a few sparse concepts.

Qi and Li, "Embedding deep networks into visual explanations" (Artificial Intelligence 2021;
arXiv 1709.05360, 2017): an *explanation network* maps the features a deep network decides on
into a low-dimensional *explanation space* of a few non-negative, sparse concepts ("x-features")
from which the network's prediction can still be rebuilt faithfully; each concept is then shown
through the images (and image regions) that activate it most, and its importance for each class.

Here, for a trained classifier with penultimate features ``f`` (``model.embed``, or a layer's
spatially averaged output), the autoencoder is

* encoder ``c = ReLU(W_e (f - b) / s + b_e)``: ``k`` non-negative concepts;
* decoder ``f_hat = s * D_unit c + b``: unit-norm concept directions ``D_unit`` (so the
  sparsity penalty cannot be dodged by shrinking codes and growing directions);
* a concept prediction: the model's own linear classifier applied to ``f_hat`` (``head="model"``)
  or a linear head on ``c`` (``head="linear"``),

trained with ``relative reconstruction error + kl_weight * KL(p_model || p_concepts) +
sparsity * mean(c)`` from a few initialisations at once, keeping the lowest loss (the objective
is not convex). Its fidelity is reported as the agreement of the two predictions and the mean
KL divergence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from medlens.core.random import generator
from medlens.models.training import fit
from medlens.core.engine import Budget
from medlens.core.targets import multilabel_of
from medlens.errors import InputError
from medlens.selfexplain.embedding import EmbeddingModel, embed, outputs
from medlens.selfexplain.schedule import warmup_cosine

HEADS = ("auto", "model", "linear")


class ConceptAutoencoder(nn.Module):
    """Features ``(B, D)`` -> ``k`` non-negative concepts ``(B, k)`` and back.

    Parameters
    ----------
    n_features : int
        ``D``.
    n_concepts : int
        ``k``.
    n_classes : int
        Outputs of the concept head (used when ``head="linear"``).
    head : {"model", "linear"}
        ``"model"``: the concept prediction is the original classifier applied to the
        reconstructed features (pass the classifier to :meth:`predict`); ``"linear"``: a linear
        layer on the concepts, owned by this module.

    ``forward(f)`` returns the concepts, so the module is a model of its own (saved and loaded
    with :func:`medlens.models.save_model` / ``load_model``, architecture
    ``"concept-autoencoder"``).
    """

    arch = "concept-autoencoder"

    def __init__(self, n_features: int, n_concepts: int = 5, n_classes: int = 2, head: str = "linear") -> None:
        super().__init__()
        if head not in ("model", "linear"):
            raise InputError(f"head must be 'model' or 'linear', got {head!r}")
        if n_concepts < 1 or n_features < 1:
            raise InputError(f"need at least one concept and one feature, got k={n_concepts}, D={n_features}")
        self.config = {"n_features": n_features, "n_concepts": n_concepts, "n_classes": n_classes, "head": head}
        self.encoder = nn.Linear(n_features, n_concepts)
        self.directions = nn.Parameter(torch.randn(n_features, n_concepts))
        self.bias = nn.Parameter(torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(()))
        self.head = nn.Linear(n_concepts, n_classes) if head == "linear" else None

    def unit_directions(self) -> torch.Tensor:
        """``(D, k)`` concept directions in feature space, unit norm (before the scale ``s``)."""
        return nn.functional.normalize(self.directions, dim=0)

    def encode(self, features: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.encoder((features - self.bias) / self.scale))

    def decode(self, concepts: torch.Tensor) -> torch.Tensor:
        return self.scale * concepts @ self.unit_directions().T + self.bias

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.encode(features)

    def predict(self, concepts: torch.Tensor, classifier: nn.Module | None = None) -> torch.Tensor:
        """Class logits ``(B, K)`` made from the concepts alone."""
        if self.head is not None:
            return self.head(concepts)
        if classifier is None:
            raise InputError("this concept autoencoder predicts through the model's classifier: pass classifier=")
        return classifier(self.decode(concepts))

    def logit_weights(self, classifier: nn.Module | None = None) -> torch.Tensor:
        """``(K, k)``: how much one unit of each concept adds to each class logit.

        The concept prediction is linear in the concepts (a linear head, or a linear classifier
        on the linear decoder), so this matrix is exact.
        """
        if self.head is not None:
            return self.head.weight.detach()
        if not isinstance(classifier, nn.Linear):
            raise InputError("concept importance through the model needs a linear classifier")
        return classifier.weight.detach() @ (self.scale * self.unit_directions()).detach()


class ConceptModel(nn.Module):
    """``x -> concepts``: the classifier's features passed through the concept encoder.

    Explaining this model with a target that selects one concept gives that concept's saliency
    map. Input ``(B, C, *spatial)``; output ``(B, k)``.
    """

    def __init__(self, model: nn.Module, autoencoder: ConceptAutoencoder, layer: nn.Module | str | None = None) -> None:
        super().__init__()
        self.features = EmbeddingModel(model, layer)
        self.autoencoder = autoencoder

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.encode(self.features(x))


@dataclass(frozen=True)
class ConceptScore:
    """Target score: the activation of concept ``index``, ``(B, k) -> (B,)``."""

    index: int

    def __call__(self, concepts: torch.Tensor) -> torch.Tensor:
        return concepts[:, self.index]


@dataclass(frozen=True)
class Fidelity:
    """How faithfully the concepts reproduce the model.

    Attributes
    ----------
    agreement : float
        Share of inputs where the concept prediction's class equals the model's.
    kl : float
        Mean ``KL(p_model || p_concepts)`` in nats.
    reconstruction : float
        Share of feature variance the concepts explain (``1 - relative squared error``).
    sparsity : float
        Mean share of concepts that are zero per input.
    """

    agreement: float
    kl: float
    reconstruction: float
    sparsity: float

    def as_dict(self) -> dict[str, float]:
        return {"agreement": self.agreement, "kl": self.kl, "reconstruction": self.reconstruction,
                "sparsity": self.sparsity}


@dataclass
class Concepts:
    """A fitted concept autoencoder and what it says about the model.

    Attributes
    ----------
    autoencoder : ConceptAutoencoder
    classifier : nn.Module or None
        The model's linear classifier (``head="model"``), else ``None``.
    layer : nn.Module, str or None
        Where the features were read (``None``: ``model.embed``).
    activations : torch.Tensor
        ``(N, k)`` concepts of the fitting inputs.
    predictions : torch.Tensor
        ``(N,)`` the model's predicted classes on them; ``(N, K)`` 0/1 findings for a
        :class:`medlens.MultiLabel` model.
    importance : torch.Tensor
        ``(K, k)`` see :func:`concept_importance`.
    fidelity : Fidelity
        On the fitting inputs.
    history : list of dict
        Loss terms per epoch.
    """

    autoencoder: ConceptAutoencoder
    classifier: nn.Module | None
    layer: nn.Module | str | None
    activations: torch.Tensor
    predictions: torch.Tensor
    importance: torch.Tensor
    fidelity: Fidelity
    history: list[dict[str, float]] = field(default_factory=list)
    multilabel: bool = False

    def top_activating(self, n: int) -> torch.Tensor:
        """``(k, n)`` rows of the fitting inputs that activate each concept most."""
        n = min(n, len(self.activations))
        return self.activations.T.topk(n, dim=1).indices


def _kl(p_logits: torch.Tensor, q_logits: torch.Tensor, multilabel: bool = False) -> torch.Tensor:
    """Per-row ``KL(softmax(p) || softmax(q))`` ``(B,)``; with ``multilabel``, the sum over the
    findings of the KL between their own Bernoulli distributions ``sigmoid(p)`` and ``sigmoid(q)``."""
    if multilabel:
        p = torch.sigmoid(p_logits)
        logsig = nn.functional.logsigmoid
        return (p * (logsig(p_logits) - logsig(q_logits)) + (1 - p) * (logsig(-p_logits) - logsig(-q_logits))).sum(1)
    logp = torch.log_softmax(p_logits, 1)
    return (logp.exp() * (logp - torch.log_softmax(q_logits, 1))).sum(1)


def fit_autoencoder(
    features: torch.Tensor,
    logits: torch.Tensor,
    *,
    k: int = 5,
    classifier: nn.Module | None = None,
    epochs: int = 300,
    lr: float = 1e-2,
    batch_size: int = 512,
    sparsity: float = 0.05,
    kl_weight: float = 1.0,
    restarts: int = 4,
    seed: int = 0,
    multilabel: bool = False,
) -> tuple[ConceptAutoencoder, list[dict[str, float]]]:
    """Train a concept autoencoder on precomputed features.

    The objective is not convex: from some starting points training settles on concepts that
    mix several true ones. ``restarts`` autoencoders are therefore trained side by side (one
    batched optimisation, so they cost little more than one) and the one with the lowest final
    loss on all inputs is kept; on features built from known factors, the lowest loss picks
    the run that recovered them (see the tests).

    Parameters
    ----------
    features : torch.Tensor
        ``(N, D)`` the model's features.
    logits : torch.Tensor
        ``(N, K)`` the model's outputs for the same inputs (the prediction to preserve).
    k : int
        Number of concepts.
    classifier : nn.Module, optional
        The model's own head ``(B, D) -> (B, K)``; given, the concepts predict through it
        (``head="model"``), else through a linear head on the concepts. Its weights are frozen.
    sparsity : float
        Weight of the L1 penalty on the concepts (in units of the feature scale).
    kl_weight : float
        Weight of ``KL(p_model || p_concepts)``.
    restarts : int
        Independent initialisations trained together.
    seed : int
        Seeds the initialisations and the batch order.
    multilabel : bool
        ``logits`` are one independent logit per finding: the KL is summed over the findings'
        own Bernoulli distributions, not taken between softmaxes across them.

    Returns
    -------
    (ConceptAutoencoder, history)
        The kept autoencoder (eval mode) and its loss terms per epoch.
    """
    if features.ndim != 2 or logits.ndim != 2 or len(features) != len(logits):
        raise InputError(
            f"features must be (N, D) and logits (N, K) with the same N, got {tuple(features.shape)} and "
            f"{tuple(logits.shape)}"
        )
    if len(features) < 2:
        raise InputError("fitting concepts needs at least two inputs")
    if not isinstance(restarts, int) or restarts < 1:
        raise InputError(f"restarts must be a positive integer, got {restarts!r}")
    features, logits = features.detach(), logits.detach()
    gen = generator(seed, "batches")
    n, d = features.shape
    r, n_classes, dtype = restarts, logits.shape[1], features.dtype
    mean = features.mean(0)
    # One scalar scale: the features' root-mean-square deviation, so that the loss weights mean
    # the same for any feature magnitude.
    scale = (features - mean).pow(2).mean().sqrt().clamp_min(1e-12)
    variance = (features - mean).pow(2).sum(1).mean()
    # Parameters of all restarts, leading axis r (the autoencoder's own layout after it).
    directions = torch.randn(r, d, k, generator=gen, dtype=dtype)
    params = {
        "directions": directions,
        "bias": mean.expand(r, d).clone(),
        "encoder_weight": nn.functional.normalize(directions, dim=1).transpose(1, 2).clone(),  # tied init
        "encoder_bias": torch.zeros(r, k, dtype=dtype),
    }
    if classifier is None:
        bound = 1.0 / k**0.5
        params["head_weight"] = torch.rand(r, n_classes, k, generator=gen, dtype=dtype) * 2 * bound - bound
        params["head_bias"] = torch.zeros(r, n_classes, dtype=dtype)
    for t in params.values():
        t.requires_grad_(True)

    def losses(f: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction, KL and L1 terms ``(r,)`` each, for a batch ``f`` ``(B, D)``."""
        x = (f[None] - params["bias"][:, None]) / scale  # (r, B, D)
        c = torch.relu(torch.einsum("rbd,rkd->rbk", x, params["encoder_weight"]) + params["encoder_bias"][:, None])
        unit = nn.functional.normalize(params["directions"], dim=1)  # (r, D, k)
        rebuilt = scale * torch.einsum("rbk,rdk->rbd", c, unit) + params["bias"][:, None]
        if classifier is None:
            q = torch.einsum("rbk,rck->rbc", c, params["head_weight"]) + params["head_bias"][:, None]
        else:
            q = classifier(rebuilt.reshape(-1, d)).reshape(r, len(f), -1)
        rec = (rebuilt - f[None]).pow(2).sum(2).mean(1) / variance
        kl = _kl(z.repeat(r, 1), q.reshape(-1, q.shape[-1]), multilabel).reshape(r, -1).mean(1)
        return rec, kl, c.sum(2).mean(1) / k

    frozen = [(p, p.requires_grad) for p in classifier.parameters()] if classifier is not None else []
    for p, _ in frozen:
        p.requires_grad_(False)
    optimizer = torch.optim.Adam(params.values(), lr=lr)
    steps = epochs * -(-n // batch_size)
    if steps >= 20:  # OneCycle's momentum cycling helps here; it needs a few steps
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps, pct_start=0.1)
    else:
        scheduler = warmup_cosine(optimizer, steps)
    def batches(epoch: int):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            yield order[start : start + batch_size]

    def step_loss(idx: torch.Tensor) -> tuple:
        rec, kl, l1 = losses(features[idx], logits[idx])
        loss = (rec + kl_weight * kl + sparsity * l1).sum()  # restarts are independent
        return loss, len(idx), {"terms": torch.stack([rec, kl, l1])}

    try:
        # free tensors, not a module: no train/eval modes, the restarts are compared below
        history = fit(None, batches, step_loss, epochs=epochs, optimizer=optimizer, scheduler=scheduler,
                      desc="training concepts")
        sums = [record["terms"] for record in history]  # per epoch: (3, r) mean loss terms
        with torch.no_grad():
            rec, kl, l1 = losses(features, logits)
            best = int((rec + kl_weight * kl + sparsity * l1).argmin())
    finally:
        for p, flag in frozen:
            p.requires_grad_(flag)
    ae = ConceptAutoencoder(d, k, n_classes, "model" if classifier is not None else "linear").to(dtype)
    with torch.no_grad():
        ae.directions.copy_(params["directions"][best])
        ae.bias.copy_(params["bias"][best])
        ae.scale.copy_(scale)
        ae.encoder.weight.copy_(params["encoder_weight"][best])
        ae.encoder.bias.copy_(params["encoder_bias"][best])
        if ae.head is not None:
            ae.head.weight.copy_(params["head_weight"][best])
            ae.head.bias.copy_(params["head_bias"][best])
    history = [
        {"epoch": e + 1, "reconstruction": float(t[0, best]), "kl": float(t[1, best]), "l1": float(t[2, best])}
        for e, t in enumerate(sums)
    ]
    return ae.eval(), history


def fidelity(
    autoencoder: ConceptAutoencoder,
    features: torch.Tensor,
    logits: torch.Tensor,
    classifier: nn.Module | None = None,
    multilabel: bool = False,
) -> Fidelity:
    """Agreement, KL, explained variance and sparsity of the concepts on ``features`` ``(N, D)``.

    With ``multilabel`` the agreement is the share of (input, finding) decisions (logit > 0) the
    concept prediction repeats, and the KL is summed over the findings (see :func:`_kl`)."""
    with torch.no_grad():
        c = autoencoder.encode(features)
        q = autoencoder.predict(c, classifier)
        err = (autoencoder.decode(c) - features).pow(2).sum()
        var = (features - features.mean(0)).pow(2).sum().clamp_min(1e-30)
        return Fidelity(
            agreement=float(((q > 0) == (logits > 0)).double().mean() if multilabel
                            else (q.argmax(1) == logits.argmax(1)).double().mean()),
            kl=float(_kl(logits, q, multilabel).mean()),
            reconstruction=float(1 - err / var),
            sparsity=float((c <= 0).double().mean()),
        )


def concept_importance(
    autoencoder: ConceptAutoencoder,
    activations: torch.Tensor,
    predictions: torch.Tensor,
    n_classes: int,
    classifier: nn.Module | None = None,
) -> torch.Tensor:
    """``(K, k)``: the mean evidence each concept adds for each class.

    ``importance[c, j] = mean over inputs predicted c of  a_j * (M[c, j] - mean_c' M[c', j])``
    with ``a_j`` the concept activation and ``M`` the exact concept-to-logit weights
    (:meth:`ConceptAutoencoder.logit_weights`). Centring over classes removes what a concept
    adds to every logit alike, which changes no probability; positive values are evidence for
    the class, negative against it. Classes never predicted get zeros.

    For a multi-label model ``predictions`` is ``(N, K)`` 0/1 and each finding's own logit decides
    it: no centring, and the mean runs over the inputs where the finding is predicted.
    """
    weights = autoencoder.logit_weights(classifier).to(activations.dtype)
    multilabel = predictions.ndim == 2
    if not multilabel:
        weights = weights - weights.mean(0, keepdim=True)  # (K, k)
    out = torch.zeros(n_classes, activations.shape[1], dtype=activations.dtype)
    for c in range(n_classes):
        rows = predictions[:, c] == 1 if multilabel else predictions == c
        if rows.any():
            out[c] = activations[rows].mean(0) * weights[c]
    return out


def _linear_classifier(model: nn.Module, n_features: int) -> nn.Module | None:
    head = getattr(model, "classifier", None)
    if isinstance(head, nn.Linear) and head.in_features == n_features:
        return _two_class_head(head) if head.out_features == 1 else head
    return None


def _model_logits(model: nn.Module, inputs: torch.Tensor, budget: Budget) -> tuple[torch.Tensor, bool]:
    """The logits the concepts must keep, and whether they are the findings of a
    :class:`medlens.MultiLabel` model (one sigmoid each; its probabilities made logits again)."""
    out = outputs(model, inputs, **budget.kwargs())
    wrapper = multilabel_of(model)
    if wrapper is None:
        return _two_class_logits(out), False
    if wrapper.outputs == "probabilities":
        out = torch.logit(out.clamp(1e-6, 1 - 1e-6))
    return out, True


def _two_class_logits(logits: torch.Tensor) -> torch.Tensor:
    """A single-logit model's ``(N, 1)`` output as two class logits ``[0, z]``, whose softmax is
    ``[1 - sigmoid(z), sigmoid(z)]``: a softmax over its one column is 1 whatever ``z``, so the
    concepts would be fitted to, and scored against, no prediction at all. Others unchanged."""
    return torch.cat([torch.zeros_like(logits), logits], 1) if logits.ndim == 2 and logits.shape[1] == 1 else logits


def _two_class_head(head: nn.Linear) -> nn.Linear:
    """The linear classifier ``[0, head(f)]``: a single-logit head as the two-class head it is."""
    two = nn.Linear(head.in_features, 2, bias=head.bias is not None).to(head.weight)
    with torch.no_grad():
        two.weight.copy_(torch.cat([torch.zeros_like(head.weight), head.weight]))
        if head.bias is not None:
            two.bias.copy_(torch.cat([torch.zeros_like(head.bias), head.bias]))
    return two.requires_grad_(False)


def learn_concepts(
    model: nn.Module,
    inputs: torch.Tensor,
    *,
    k: int = 5,
    layer: nn.Module | str | None = None,
    head: str = "auto",
    epochs: int = 300,
    sparsity: float = 0.05,
    kl_weight: float = 1.0,
    seed: int = 0,
    batch_size: int | None = None, memory_mb: float | None = None,
    **fit_options: Any,
) -> Concepts:
    """Fit a concept autoencoder to a trained classifier on ``inputs`` (its training images).

    Parameters
    ----------
    model : nn.Module
        The classifier; its features come from ``model.embed`` or ``layer``. Wrapped in
        :class:`medlens.MultiLabel` (one sigmoid per finding), the concepts keep each finding's
        own probability and the fidelity counts (input, finding) decisions.
    inputs : torch.Tensor
        ``(N, C, *spatial)``.
    k : int
        Number of concepts (Qi and Li use a handful, here 5 by default).
    head : {"auto", "model", "linear"}
        ``"model"`` predicts from the concepts through the model's own linear ``classifier``
        (its penultimate features are needed, so ``layer=None``); ``"linear"`` learns a linear
        head on the concepts; ``"auto"`` picks ``"model"`` when possible.
    epochs, sparsity, kl_weight, seed, fit_options
        See :func:`fit_autoencoder`.

    Returns
    -------
    Concepts
    """
    budget = Budget(batch_size, memory_mb)
    if head not in HEADS:
        raise InputError(f"head must be one of {', '.join(HEADS)}, got {head!r}")
    if not isinstance(k, int) or k < 1:
        raise InputError(f"k (the number of concepts) must be a positive integer, got {k!r}")
    features = embed(model, inputs, layer=layer, **budget.kwargs())
    logits, multilabel = _model_logits(model, inputs, budget)
    if logits.ndim != 2:
        raise InputError(f"the model output has shape {tuple(logits.shape)}; expected (batch, classes)")
    classifier = _linear_classifier(model, features.shape[1]) if layer is None else None
    if head == "model" and classifier is None:
        raise InputError(
            "head='model' needs the model's penultimate features (layer=None) and a linear "
            "model.classifier taking them; use head='linear'"
        )
    if head == "linear":
        classifier = None
    ae, history = fit_autoencoder(
        features, logits, k=k, classifier=classifier, epochs=epochs, sparsity=sparsity,
        kl_weight=kl_weight, seed=seed, multilabel=multilabel, **fit_options,
    )
    with torch.no_grad():
        activations = ae.encode(features)
    predictions = (logits > 0).long() if multilabel else logits.argmax(1)
    return Concepts(
        autoencoder=ae,
        classifier=classifier,
        layer=layer,
        activations=activations,
        predictions=predictions,
        importance=concept_importance(ae, activations, predictions, logits.shape[1], classifier),
        fidelity=fidelity(ae, features, logits, classifier, multilabel),
        history=history,
        multilabel=multilabel,
    )


def evaluate_concepts(
    model: nn.Module, concepts: Concepts, inputs: torch.Tensor, *, budget: Budget = Budget()
) -> Fidelity:
    """Fidelity of fitted concepts on other inputs ``(N, C, *spatial)`` (a held-out split)."""
    features = embed(model, inputs, layer=concepts.layer, **budget.kwargs())
    logits, multilabel = _model_logits(model, inputs, budget)
    return fidelity(concepts.autoencoder, features, logits, concepts.classifier, multilabel)


def concept_saliency(
    model: nn.Module,
    autoencoder: ConceptAutoencoder,
    x: torch.Tensor,
    concept: int,
    *,
    layer: nn.Module | str | None = None,
    method: str = "gradient",
    batch_size: int | None = None,
    memory_mb: float | None = None,
    **options: Any,
):
    """Saliency of one concept: which input elements raise its activation.

    Runs :func:`medlens.explain` on :class:`ConceptModel` (inputs -> concepts) with the target
    :class:`ConceptScore` ``(concepts -> concepts[:, concept])``, so any registered method
    applies (``method="gradient"``: the gradient of the concept activation with respect to
    the input).

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)``.
    concept : int
        Index in ``0..k-1``.
    layer : nn.Module, str or None
        The layer the concepts were fitted on; a layer-reading method (Grad-CAM) reads it too.

    Returns
    -------
    Attribution
        ``values`` ``(B, C, *spatial)`` (layer resolution for CAM-type methods).
    """
    from medlens.attribution.explain import explain
    from medlens.attribution.registry import get_method

    k = autoencoder.config["n_concepts"]
    if not (isinstance(concept, int) and 0 <= concept < k):
        raise InputError(f"concept must be an index in 0..{k - 1}, got {concept!r}")
    wrapper = ConceptModel(model, autoencoder, layer)
    if layer is not None and "layer" in get_method(method).options():
        # the concepts read this layer: a CAM at the model's last convolution, after it, gets no gradient
        options["layer"] = wrapper.features.layer
    return explain(
        wrapper, x, target=ConceptScore(concept), method=method, batch_size=batch_size, memory_mb=memory_mb, **options
    )
