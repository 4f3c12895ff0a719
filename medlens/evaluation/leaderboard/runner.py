"""The leaderboard runner: every attribution method scored on every sample by every metric.

:func:`evaluate` explains each batch of samples with every registered method (and the
baselines of :mod:`medlens.evaluation.baselines`), scores the maps with every applicable metric
of :mod:`medlens.evaluation.registry`, and appends one JSON line per (sample, method) to
``results.jsonl`` (:mod:`.store`) as it goes. A rerun with the same settings reads the file,
drops a truncated last line, skips what is done and continues: a run killed part-way and
restarted ends with the same file as an uninterrupted run. The summary is computed from that
file alone (:func:`.summary.summarise`).

Reproducibility: batches of samples are fixed (``0..cases_per_batch-1``, ...), the engine's chunk
size is fixed (``batch_size``), random methods get the run's seed and random baselines a
seed per sample, so recomputing a batch gives the same numbers.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from medlens.core import engine
from medlens.core.checks import evaluation_mode
from medlens.core.engine import Budget
from medlens.core.progress import SILENT, Progress
from medlens.core.targets import Target
from medlens.errors import FileFormatError, InputError, MedlensError, UnknownNameError
from medlens.evaluation.baselines import BASELINE_MAPS, BASELINES, baseline_attribution
from medlens.evaluation.explainers import explainer_for
from medlens.evaluation.leaderboard import store
from medlens.evaluation.leaderboard.store import (
    BASELINE_PREFIX,
    FORMAT_VERSION,
    MODEL_ENTRY,
    RESULTS_FILE,
    TIMINGS_FILE,
    clean,
    read_results,
)
from medlens.evaluation.leaderboard.summary import summarise
from medlens.evaluation.maps import as_mask
from medlens.evaluation.registry import (
    EvalBatch,
    get_metric,
    metric_call_options,
    metric_names,
)
from medlens.evaluation.sanity import SANITY_THRESHOLD, randomised_copy
from medlens.evaluation.shortcut import marker_intervention
from medlens.models.fingerprint import model_fingerprint

__all__ = ["LeaderboardSettings", "evaluate"]


@dataclass(frozen=True)
class LeaderboardSettings:
    """What the leaderboard computes; recorded in the results file and checked on resume.

    Attributes
    ----------
    methods : "all" or sequence of str
        Registered methods (``"all"``: :func:`medlens.methods` at run time).
    metrics : "all" or sequence of str
        Registered metrics; ``"all"`` keeps those the data allows (masks, markers).
    baselines : sequence of str
        Baseline maps scored like methods (``random``, ``centre``, ``edge``).
    target : {"label", "predicted"} or int
        The class explained: the ground-truth label (localisation against a lesion mask is
        meaningful for the lesion class), the model's prediction, or one class (a finding of a
        multi-label model) on every case.
    seed : int
    cases_per_batch : int
        Samples per batch: the unit of work, of writing and of resuming.
    batch_size : int
        Fixed engine chunk size (as ``batch_size`` everywhere in medlens), so that numbers do
        not depend on the free memory.
    method_options : dict
        ``{method: {option: value}}``, e.g. ``{"rise": {"n_masks": 500}}``.
    metric_options : dict
        ``{metric: {option: value}}``, e.g. ``{"deletion_auc": {"steps": 10}}``.
    marker_class : int
        The class the shortcut marker predicts in the training data.
    """

    methods: Any = "all"
    metrics: Any = "all"
    baselines: Sequence[str] = tuple(BASELINES)
    target: str | int = "label"
    seed: int = 0
    cases_per_batch: int = 16
    batch_size: int = 64
    method_options: dict = field(default_factory=dict)
    metric_options: dict = field(default_factory=dict)
    marker_class: int = 1


def _resolve_methods(methods: Any) -> list[str]:
    from medlens.attribution.explain import methods as registered_methods
    from medlens.attribution.registry import get_method

    names = registered_methods() if methods == "all" else list(methods)
    for name in names:
        get_method(name)
    return names


def _resolve_metrics(metrics: Any, has_masks: bool, has_markers: bool) -> list[str]:
    if metrics == "all":
        names = [
            n for n in metric_names()
            if (has_masks or not get_metric(n).needs_masks) and (has_markers or not get_metric(n).needs_marker)
        ]
    else:
        names = list(metrics)
        for n in names:
            info = get_metric(n)
            if info.needs_masks and not has_masks:
                raise InputError(f"metric {n!r} needs ground-truth masks, and the data has none")
            if info.needs_marker and not has_markers:
                raise InputError(f"metric {n!r} needs shortcut-marker masks, and the data has none")
    return names


def _metric_options(names: list[str], overrides: dict) -> dict[str, dict]:
    out = {n: metric_call_options(n, overrides.get(n)) for n in names}
    for n in overrides:
        if n not in names:
            raise UnknownNameError(f"options given for metric {n!r}, which is not evaluated")
    return out


def _method_options(methods: list[str], overrides: dict, seed: int) -> dict[str, dict]:
    from medlens.attribution.registry import method_call_options

    out = {n: method_call_options(n, overrides.get(n), seed=seed) for n in methods}
    for n in overrides:
        if n not in methods:
            raise UnknownNameError(f"options given for method {n!r}, which is not evaluated")
    return out


def evaluate(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor | None = None,
    masks: torch.Tensor | None = None,
    marker_masks: torch.Tensor | None = None,
    *,
    out: str | os.PathLike,
    settings: LeaderboardSettings = LeaderboardSettings(),
    data_name: str = "",
    class_names: Sequence[str] | None = None,
    restart: bool = False,
    progress: bool | Progress = True,
) -> dict:
    """Score every method on every sample; write ``out/results.jsonl``; return the summary.

    Parameters
    ----------
    model : nn.Module
        Classifier ``(B, K)``; never modified (randomisation works on a copy).
    inputs : torch.Tensor
        ``(N, C, *spatial)``.
    labels : torch.Tensor, optional
        ``(N,)``; needed for ``settings.target == "label"``.
    masks : torch.Tensor, optional
        ``(N, *spatial)`` or ``(N, 1, *spatial)`` ground-truth evidence masks (localisation).
    marker_masks : torch.Tensor, optional
        Same shape: where a shortcut marker is drawn (shortcut audit).
    out : path
        Folder of the results file (created).
    settings : LeaderboardSettings
    data_name : str
        Recorded in the config line (e.g. ``"lesions.npz/test"``).
    class_names : sequence of str, optional
        Names of the model's classes, for the report's sentences.
    restart : bool
        Discard an existing results file instead of resuming it.
    progress : bool or Progress
        Where progress is shown: ``True`` a progress bar on stderr, ``False`` nothing, or a
        :class:`~medlens.core.progress.Progress` (``--quiet`` honoured).

    Returns
    -------
    dict
        :func:`summarise` of the results file.

    Raises
    ------
    MedlensError
        The results file in ``out`` was written with other settings (resume refused), or an
        argument is invalid.
    """
    s = settings
    for name in ("cases_per_batch", "batch_size"):
        value = getattr(s, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{name} must be a positive integer, got {value!r}")
    fixed = isinstance(s.target, int) and not isinstance(s.target, bool)  # one class on every case
    if not fixed and s.target not in ("label", "predicted"):
        raise InputError(f"target must be 'label', 'predicted' or a class index, got {s.target!r}")
    if not isinstance(inputs, torch.Tensor) or inputs.ndim < 3 or not len(inputs):
        raise InputError("inputs must be a non-empty tensor (N, C, *spatial)")
    n, _c, *spatial = inputs.shape
    if labels is None and s.target == "label":
        raise InputError("target='label' needs labels")
    masks = as_mask(masks, n, spatial, "masks") if masks is not None else None
    marker_masks = as_mask(marker_masks, n, spatial, "marker masks") if marker_masks is not None else None
    has_masks = masks is not None and bool(masks.any())
    has_markers = marker_masks is not None and bool(marker_masks.any())
    methods = _resolve_methods(s.methods)
    for b in s.baselines:
        BASELINE_MAPS.get(b)  # an unknown name fails here, listing the baseline maps
    metrics = _resolve_metrics(s.metrics, has_masks, has_markers)
    metric_opts = _metric_options(metrics, s.metric_options)
    method_opts = _method_options(methods, s.method_options, s.seed)
    entries = [(m, "method") for m in methods] + [(BASELINE_PREFIX + b, "baseline") for b in s.baselines]
    budget = Budget(batch_size=s.batch_size)

    with evaluation_mode(model):
        outputs = engine.forward(model, inputs, budget)
    predicted = outputs.argmax(1).cpu()
    classes = (labels.long().cpu() if s.target == "label" else
               torch.full_like(predicted, s.target) if fixed else predicted)
    if int(classes.max()) >= outputs.shape[1] or int(classes.min()) < 0:
        raise InputError(f"{'the target class' if fixed else 'labels'} must lie in 0..{outputs.shape[1] - 1} for this model")

    config = clean({
        "type": "config",
        "format": FORMAT_VERSION,
        "data": data_name,
        "class_names": None if class_names is None else [str(c) for c in class_names],
        "n_samples": n,
        "input_shape": list(inputs.shape[1:]),
        "model": model_fingerprint(model),
        "entries": [e for e, _ in entries],
        "kinds": {e: k for e, k in entries},
        "metrics": {m: metric_opts[m] for m in metrics},
        "method_options": method_opts,
        "target": s.target,
        "seed": s.seed,
        "cases_per_batch": s.cases_per_batch,
        "batch_size": s.batch_size,
        "marker_audit": has_markers,
        "marker_class": s.marker_class,
        "sanity_threshold": SANITY_THRESHOLD,
    })
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    plan = _Plan(config, model, inputs, labels, masks, marker_masks, classes, predicted, has_markers, entries,
                 metrics, metric_opts, method_opts, s, budget)
    if not isinstance(progress, Progress):
        progress = Progress() if progress else SILENT
    with store.exclusive(out):
        return _run_locked(out, plan, restart=restart, progress=progress)


@dataclass(frozen=True)
class _Plan:
    """Everything :func:`evaluate` resolved before touching the results file."""

    config: dict
    model: nn.Module
    inputs: torch.Tensor
    labels: torch.Tensor | None
    masks: torch.Tensor | None
    marker_masks: torch.Tensor | None
    classes: torch.Tensor
    predicted: torch.Tensor
    has_markers: bool
    entries: list
    metrics: list
    metric_opts: dict
    method_opts: dict
    settings: LeaderboardSettings
    budget: Budget


def _run_locked(out: Path, plan: _Plan, *, restart: bool, progress: Progress) -> dict:
    """Resume or start the results file in ``out`` and score what is missing."""
    config, model, inputs, labels, masks = plan.config, plan.model, plan.inputs, plan.labels, plan.masks
    marker_masks, classes, predicted, has_markers = plan.marker_masks, plan.classes, plan.predicted, plan.has_markers
    entries, metrics, metric_opts, method_opts = plan.entries, plan.metrics, plan.metric_opts, plan.method_opts
    s, budget = plan.settings, plan.budget
    n = len(inputs)
    path = out / RESULTS_FILE
    done: set[tuple[int, str]] = set()
    if path.exists() and restart:
        path.unlink()
        (out / TIMINGS_FILE).unlink(missing_ok=True)
    if path.exists():
        store.repair(path)
        if path.stat().st_size == 0:  # killed while writing the config line: nothing to keep
            path.unlink()
    if path.exists():
        try:
            old_config, records = read_results(path)
        except FileFormatError as err:
            raise MedlensError(f"cannot resume: {err}; pass restart=True (--restart) to start over") from err
        if old_config != json.loads(json.dumps(config)):
            raise MedlensError(
                f"{path} holds results computed with other settings (model, data, methods or metrics); "
                "use another output folder or restart=True (--restart) to discard them"
            )
        done = {(r["sample"], r["method"]) for r in records}
    else:
        with open(path, "w", encoding="utf-8") as fh:
            store.append(fh, [config])

    needs_random = any(get_metric(m).needs_randomised for m in metrics)
    randomised = randomised_copy(model, seed=s.seed) if needs_random else None
    template = None
    if has_markers:
        first = int(torch.nonzero(marker_masks.reshape(n, -1).any(1))[0])
        template = (inputs[first], marker_masks[first])
    all_entries = ([(MODEL_ENTRY, "model")] if has_markers else []) + entries
    starts = list(range(0, n, s.cases_per_batch))
    # The (batch, entry) pairs with a sample still missing, batches outermost: resuming skips the rest.
    work = [
        (start, entry, kind)
        for start in starts for entry, kind in all_entries
        if any((i, entry) not in done for i in range(start, min(start + s.cases_per_batch, n)))
    ]
    loaded = None  # the batch whose inputs are on the device
    with open(path, "a", encoding="utf-8") as fh, open(out / TIMINGS_FILE, "a", encoding="utf-8") as timings:
        for start, entry, kind in progress.over(work, "evaluating", total=len(work), unit="method-batch"):
            if loaded != start:
                ids = torch.arange(start, min(start + s.cases_per_batch, n))
                x = inputs[ids].to(engine.model_device(model))
                target = Target(classes[ids].to(x.device))
                loaded = start
            missing = [int(i) for i in ids if (int(i), entry) not in done]
            t0 = time.perf_counter()
            if kind == "model":
                rows = _marker_rows(model, x, marker_masks[ids], template, s.marker_class, budget)
            else:
                rows = _score_entry(
                    entry, kind, model, randomised, x, target, ids, masks, marker_masks,
                    metrics, metric_opts, method_opts, s.seed, budget,
                )
            seconds = time.perf_counter() - t0
            records = []
            for j, i in enumerate(ids.tolist()):
                if i not in missing:
                    continue
                rec = {"type": "result", "sample": i, "method": entry, "kind": kind,
                       "label": None if labels is None else int(labels[i]), "target": int(classes[i]),
                       "predicted": int(predicted[i]), **rows[j]}
                records.append(clean(rec))
            store.append(fh, records)
            store.append(timings, [{"method": entry, "samples": len(ids), "seconds": round(seconds, 4)}])
    return summarise(path)


def _score_entry(
    entry: str,
    kind: str,
    model: nn.Module,
    randomised: nn.Module | None,
    x: torch.Tensor,
    target: Target,
    ids: torch.Tensor,
    masks: torch.Tensor | None,
    marker_masks: torch.Tensor | None,
    metrics: list[str],
    metric_opts: dict[str, dict],
    method_opts: dict[str, dict],
    seed: int,
    budget: Budget,
) -> list[dict]:
    """Per-sample ``{"metrics": ..., "curves": ...}`` for one method on one batch."""
    if kind == "method":
        explainer = explainer_for(entry, budget=budget, **method_opts[entry])
    else:
        name = entry[len(BASELINE_PREFIX):]

        def explainer(_model, xs, _target, _name=name):
            return baseline_attribution(_name, xs, seed=seed, sample_ids=ids)

    try:
        attribution = explainer(model, x, target)
    except MedlensError as err:
        # A method that does not apply to this model (an attention method on a CNN, a layer
        # option that names no layer) is recorded as such; the other methods go on.
        return [{"metrics": {m: None for m in metrics}, "error": " ".join(str(err).split())} for _ in range(len(ids))]
    rand_attr = None
    if randomised is not None and any(get_metric(m).needs_randomised for m in metrics):
        rand_attr = explainer(randomised, x, target)
    batch = EvalBatch(
        model=model, x=x, target=target, attribution=attribution, explainer=explainer, sample_ids=ids,
        masks=None if masks is None else masks[ids].to(x.device),
        marker_masks=None if marker_masks is None else marker_masks[ids].to(x.device),
        randomised_attribution=rand_attr, seed=seed, budget=budget,
    )
    rows: list[dict] = [{"metrics": {}, "curves": {}} for _ in range(len(ids))]
    for m in metrics:
        result = get_metric(m).fn(batch, **metric_opts[m])
        values, extras = result if isinstance(result, tuple) else (result, {})
        for j in range(len(ids)):
            rows[j]["metrics"][m] = float(values[j])
            if "curve" in extras:
                rows[j]["curves"][m] = extras["curve"][j].tolist()
    for row in rows:
        if not row["curves"]:
            del row["curves"]
    return rows


def _marker_rows(model, x, marker_masks, template, marker_class, budget) -> list[dict]:
    res = marker_intervention(model, x, marker_masks.to(x.device), template, marker_class=marker_class, **budget.kwargs())
    return [
        {"metrics": {
            "marker_present": int(res.present[j]),
            "p_original": float(res.p_original[j]),
            "p_intervened": float(res.p_intervened[j]),
            "marker_fraction": float(res.marker_fraction[j]),
        }}
        for j in range(len(res.present))
    ]
