"""The per-case code path of the audit: one batch of cases in, one result per case out.

Both engines (:mod:`medlens.audit.engines`: in-process, and Ray actors) call
:func:`audit_batch` on the same fixed batches of cases (case ``i`` belongs to batch
``i // cases_per_batch``), with the engine's chunk size fixed by the settings, so that their results
are identical and a resumed run equals an uninterrupted one.

For every case: the prediction and class probabilities, the attribution map of each method for
the predicted class (:func:`medlens.attribution.explain.explain`), deletion and insertion AUC
(Petsiuk et al. 2018, with the leaderboard's settings from
:mod:`medlens.evaluation.metrics`), pointing game and mass in mask where the case has an
evidence mask, the share of relevance outside the evidence
(:func:`medlens.audit.summary.misplaced_relevance`) and the map summary kept for the cohort
analysis (:func:`medlens.audit.summary.summarise_maps`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from medlens.attribution.explain import explain
from medlens.attribution.registry import get_method, method_call_options
from medlens.audit.summary import GRID_CELLS, evidence_grid, misplaced_relevance, summarise_maps, summary_grid
from medlens.core.checks import check_input, evaluation_mode, model_outputs
from medlens.core.engine import Budget, model_device
from medlens.core.targets import model_probabilities, to_target
from medlens.errors import InputError, UnknownNameError
from medlens.evaluation.maps import saliency_map
from medlens.evaluation.registry import EvalBatch, get_metric, metric_call_options

__all__ = ["AuditSettings", "CaseFailure", "CaseResult", "DEFAULT_METHODS", "MASK_METRICS", "audit_batch"]

DEFAULT_METHODS = ("gradcam", "integrated_gradients")
# SpRAy clusters input-resolution relevance (LRP in Lapuschkin et al. 2019). Grad-CAM's maps have
# the resolution of the last convolution, where a small artefact (a corner tag of 5x5 pixels on
# 64x64) shares a cell with the anatomy; single gradients are too noisy to cluster. SmoothGrad
# (Smilkov et al. 2017) is both sharp and stable: on the shortcut benchmark its clusters of the
# lesion class separate the marked images exactly (benchmarks/audit.py), Grad-CAM's do not.
DEFAULT_CLUSTER_METHOD = "smoothgrad"
FAITHFULNESS_METRICS = ("deletion_auc", "insertion_auc")
MASK_METRICS = ("pointing_game", "mass_in_mask")


@dataclass(frozen=True)
class AuditSettings:
    """What the audit computes for every case; stored with the results and checked on resume.

    Attributes
    ----------
    methods : tuple of str
        Registered attribution methods scored per case.
    cluster_method : str
        The method whose maps SpRAy clusters; run as well when not among ``methods``.
    method_options : dict
        ``{method: {option: value}}``; random methods get ``seed`` unless given.
    metrics : tuple of str
        Registered metrics scored per case and method: faithfulness always, localisation
        (``pointing_game``, ``mass_in_mask``) only when the data has evidence masks.
    metric_options : dict
        ``{metric: {option: value}}``, e.g. ``{"deletion_auc": {"steps": 10}}``.
    cases_per_batch : int
        Cases per unit of work (of computing, committing and retrying).
    batch_size : int
        Fixed engine chunk size (as ``batch_size`` everywhere in medlens), so that numbers do
        not depend on free memory or the engine.
    grid_cells : int
        Cells of a map summary (:func:`medlens.audit.summary.summary_grid`).
    seed : int
    """

    methods: tuple[str, ...] = DEFAULT_METHODS
    cluster_method: str = DEFAULT_CLUSTER_METHOD
    method_options: dict = field(default_factory=dict)
    metrics: tuple[str, ...] = FAITHFULNESS_METRICS + MASK_METRICS
    metric_options: dict = field(default_factory=dict)
    cases_per_batch: int = 16
    batch_size: int = 64
    grid_cells: int = GRID_CELLS
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.methods:
            raise InputError("the audit needs at least one attribution method")
        for name in self.all_methods:
            get_method(name)  # fails on an unknown name
        for name in self.metrics:
            get_metric(name)
        for name, value in (("cases_per_batch", self.cases_per_batch), ("batch_size", self.batch_size),
                            ("grid_cells", self.grid_cells)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")
        for name in self.method_options:
            if name not in self.all_methods:
                raise UnknownNameError(f"options given for method {name!r}, which the audit does not run")
        for name, opts in self.metric_options.items():
            if name not in self.metrics:
                raise UnknownNameError(f"options given for metric {name!r}, which the audit does not score")
            metric_call_options(name, opts)  # the one "no such option" check

    @property
    def all_methods(self) -> tuple[str, ...]:
        """The methods run: ``methods``, then ``cluster_method`` when it is not among them."""
        return self.methods if self.cluster_method in self.methods else (*self.methods, self.cluster_method)

    def options_for(self, method: str) -> dict[str, Any]:
        """The method's options, with the run's seed for random methods."""
        return method_call_options(method, self.method_options.get(method, {}), seed=self.seed)

    def to_json(self) -> str:
        payload = asdict(self)
        payload["methods"] = list(self.methods)
        payload["metrics"] = list(self.metrics)
        return json.dumps(payload, sort_keys=True, default=repr)

    @classmethod
    def from_json(cls, text: str) -> "AuditSettings":
        payload = json.loads(text)
        payload["methods"] = tuple(payload["methods"])
        payload["metrics"] = tuple(payload["metrics"])
        return cls(**payload)

    def columns(self) -> list[str]:
        """Metric columns of the results, ``method.metric`` for every pair, then misplaced shares."""
        cols = [f"{m}.{k}" for m in self.all_methods for k in self.metrics]
        return cols + [f"{m}.misplaced" for m in self.all_methods]


@dataclass(frozen=True)
class CaseResult:
    """Everything the audit keeps about one case.

    Attributes
    ----------
    index : int
        Position of the case in the data set (its split, for npz data).
    case : str
        The case's name: its index for npz data, its path relative to the folder for scans.
    label : int or None
    predicted : int
    probabilities : tuple of float
        ``(K,)`` class probabilities (a multi-label model's: each finding's own sigmoid).
    metrics : dict
        ``{"method.metric": value}`` (NaN where a metric does not apply, e.g. no mask), and
        ``"method.misplaced"``: the share of relevance outside the evidence.
    summaries : torch.Tensor
        ``(n_methods, G)`` float32 map summaries, one row per method of
        ``settings.all_methods``.
    evidence : torch.Tensor
        ``(G,)`` float32, 1 where the summary cell may hold class evidence
        (:func:`medlens.audit.summary.evidence_grid`); empty for a note.
    tokens : torch.Tensor or None
        A note (:mod:`medlens.audit.notes`): int64 ``(n,)`` the token ids of its ``n`` real
        positions, to which the rows of ``summaries`` (one per score column, ``(n_columns, n)``)
        belong; ``None`` for every other kind of case.
    """

    index: int
    case: str
    label: int | None
    predicted: int
    probabilities: tuple[float, ...]
    metrics: dict[str, float]
    summaries: torch.Tensor
    evidence: torch.Tensor
    tokens: torch.Tensor | None = None

    @property
    def probability(self) -> float:
        """Probability of the predicted class."""
        return self.probabilities[self.predicted]


@dataclass(frozen=True)
class CaseFailure:
    """A case that could not be read or prepared: kept in the store with its one-line error, so a
    resumed run does not retry it and the audit lists it (``unreadable.csv``)."""

    index: int
    case: str
    error: str


def _explainer_unused(_model, _x, _target):  # the scored metrics never re-explain
    raise RuntimeError("the audit's metrics do not re-explain")


def audit_batch(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor | None,
    *,
    labels: Sequence[int | None],
    masks: torch.Tensor | None,
    indices: Sequence[int],
    cases: Sequence[str],
    settings: AuditSettings,
) -> list[CaseResult]:
    """Audit one batch of cases.

    Parameters
    ----------
    model : nn.Module
        Classifier returning ``(B, K)`` scores.
    x : torch.Tensor
        ``(B, C, *spatial)`` inputs, 1 to 3 spatial axes.
    target : torch.Tensor or None
        ``(B,)`` classes to explain; ``None`` (the audit's choice) explains the predicted class.
    labels : sequence of int or None
        Ground-truth labels (``None`` where unknown), one per case.
    masks : torch.Tensor or None
        ``(B, *spatial)`` or ``(B, 1, *spatial)`` evidence masks; empty masks mean "none".
    indices, cases : sequences
        Position and name of each case.
    settings : AuditSettings

    Returns
    -------
    list of CaseResult
        One per case, in input order.
    """
    x = check_input(x)
    b, _c, *spatial = x.shape
    if not len(labels) == len(indices) == len(cases) == b:
        raise InputError(f"got {b} inputs but {len(labels)} labels, {len(indices)} indices and {len(cases)} names")
    budget = Budget(batch_size=settings.batch_size)
    grid = summary_grid(spatial, settings.grid_cells)
    if masks is not None:
        masks = masks.reshape(b, *spatial).to(torch.bool)
        if not masks.any():
            masks = None
    columns: dict[str, torch.Tensor] = {}
    summaries = []
    with evaluation_mode(model):
        x = x.to(model_device(model))
        outputs = model_outputs(model, x, budget)
        probs = model_probabilities(outputs, model).detach().to("cpu", torch.float64)  # a finding: its own sigmoid
        predicted = probs.argmax(1)
        explained = predicted if target is None else torch.as_tensor(target).reshape(-1).long()
        tgt = to_target(explained, outputs)
        # A mask marks the evidence for its case's label: it says where to look only when the
        # model predicts that label; other cases fall back to the border prior.
        own = None
        if masks is not None:
            agrees = torch.tensor([lab is not None and int(lab) == int(p) for lab, p in zip(labels, predicted)])
            own = masks.cpu() & agrees.view(b, *([1] * len(spatial)))
        evidence = evidence_grid(own, spatial, grid, b)
        for method in settings.all_methods:
            attribution = explain(model, x, explained, method, batch_size=settings.batch_size,
                                  **settings.options_for(method))
            values = attribution.values
            batch = EvalBatch(model, x, tgt, values, _explainer_unused, torch.as_tensor(list(indices)),
                              masks=None if masks is None else masks.to(x.device), seed=settings.seed, budget=budget)
            for metric in settings.metrics:
                info = get_metric(metric)
                if info.needs_masks and masks is None:
                    columns[f"{method}.{metric}"] = torch.full((b,), math.nan, dtype=torch.float64)
                    continue
                scored = info.fn(batch, **settings.metric_options.get(metric, {}))
                scored = scored[0] if isinstance(scored, tuple) else scored
                columns[f"{method}.{metric}"] = scored.detach().to("cpu", torch.float64).reshape(b)
            sal = saliency_map(values, spatial, abs=True).cpu()  # (B, *spatial)
            columns[f"{method}.misplaced"] = misplaced_relevance(sal, own)
            summaries.append(summarise_maps(sal, grid))  # (B, G)
    stacked = torch.stack(summaries, dim=1)  # (B, n_methods, G)
    results = []
    for i in range(b):
        results.append(CaseResult(
            index=int(indices[i]),
            case=str(cases[i]),
            label=None if labels[i] is None else int(labels[i]),
            predicted=int(predicted[i]),
            probabilities=tuple(float(p) for p in probs[i]),
            metrics={k: float(v[i]) for k, v in columns.items()},
            summaries=stacked[i].clone(),
            evidence=evidence[i].clone(),
        ))
    return results
