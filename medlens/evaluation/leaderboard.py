"""The leaderboard: every attribution method scored on every sample by every metric.

:func:`evaluate` explains each batch of samples with every registered method (and the
baselines of :mod:`medlens.evaluation.baselines`), scores the maps with every applicable metric
of :mod:`medlens.evaluation.registry`, and appends one JSON line per (sample, method) to
``results.jsonl`` as it goes (flushed and fsynced). A rerun with the same settings reads the
file, drops a truncated last line, skips what is done and continues: a run killed part-way and
restarted ends with the same file as an uninterrupted run. :func:`summarise` computes everything
else from that file alone: mean and 95 % bootstrap confidence interval per method and metric,
mean deletion / insertion curves, the shortcut audit and the verdict (which method to trust).

Reproducibility: batches of samples are fixed (``0..cases_per_batch-1``, ...), the engine's chunk
size is fixed (``batch_size``), random methods get the run's seed and random baselines a
seed per sample, so recomputing a batch gives the same numbers.

File layout (``results.jsonl``)::

    {"type": "config", ...settings...}
    {"type": "result", "sample": 0, "method": "gradient", "kind": "method", "label": 1,
     "target": 1, "metrics": {"deletion_auc": 0.21, ...}, "curves": {"deletion_auc": [...]}}
    {"type": "result", "sample": 0, "method": "model:marker", "kind": "model", ...}
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import torch
from torch import nn

from medlens.core.checks import evaluation_mode
from medlens.core import engine
from medlens.core.engine import Budget
from medlens.core.targets import Target
from medlens.errors import FileFormatError, InputError, MedlensError, UnknownNameError
from medlens.evaluation.baselines import BASELINE_MAPS, BASELINES, baseline_attribution
from medlens.evaluation.explainers import explainer_for
from medlens.evaluation.maps import as_mask
from medlens.evaluation.registry import EvalBatch, get_metric, metric_names
from medlens.evaluation.sanity import SANITY_THRESHOLD, randomised_copy
from medlens.evaluation.shortcut import marker_intervention

__all__ = [
    "BASELINE_PREFIX",
    "RESULTS_FILE",
    "LeaderboardSettings",
    "evaluate",
    "read_results",
    "summarise",
    "trust_verdict",
]

RESULTS_FILE = "results.jsonl"
TIMINGS_FILE = "timings.jsonl"
LOCK_FILE = ".lock"
FORMAT_VERSION = 1
BASELINE_PREFIX = "baseline:"
MODEL_ENTRY = "model:marker"
_DIGITS = 10  # significant digits stored: absorbs last-bit noise, far below any reported precision


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
    target : {"label", "predicted"}
        The class explained: the ground-truth label (localisation against a lesion mask is
        meaningful for the lesion class) or the model's prediction.
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
    target: str = "label"
    seed: int = 0
    cases_per_batch: int = 16
    batch_size: int = 64
    method_options: dict = field(default_factory=dict)
    metric_options: dict = field(default_factory=dict)
    marker_class: int = 1


# --------------------------------------------------------------------------------------------
# Results file
# --------------------------------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """JSON-ready value: floats rounded to ``_DIGITS`` significant digits, NaN as ``None``."""
    if isinstance(value, torch.Tensor):
        value = value.tolist()
    if isinstance(value, float):
        return None if not math.isfinite(value) else float(f"{value:.{_DIGITS}g}")
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def _repair(path: Path) -> None:
    """Drop a truncated last line (a run killed while writing)."""
    with open(path, "rb+") as fh:
        data = fh.read()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            fh.seek(cut)
            fh.truncate()


def read_results(path: str | os.PathLike) -> tuple[dict, list[dict]]:
    """The config and the result records of a results file (a truncated last line is ignored).

    Raises
    ------
    FileFormatError
        The file is missing, does not start with a config line, or holds a corrupt line.
    """
    p = Path(path)
    if p.is_dir():
        p = p / RESULTS_FILE
    if not p.exists():
        raise FileFormatError(f"results file not found: {p}")
    data = p.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
    lines = data.decode("utf-8").splitlines()
    if not lines:
        raise FileFormatError(f"{p} is empty")
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise FileFormatError(f"{p} line {number} is not valid JSON ({err.msg})") from err
    config = records[0]
    if config.get("type") != "config" or config.get("format") != FORMAT_VERSION:
        raise FileFormatError(f"{p} is not a medlens results file (no config line)")
    return config, [r for r in records[1:] if r.get("type") == "result"]


def _append(fh, records: Iterable[dict]) -> None:
    fh.write("".join(json.dumps(r, allow_nan=False) + "\n" for r in records))
    fh.flush()
    os.fsync(fh.fileno())


def model_fingerprint(model: nn.Module) -> str:
    """A short hash of the model's parameters and buffers: resuming with another model fails."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# Evaluation
# --------------------------------------------------------------------------------------------


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
    out = {}
    for n in names:
        known = get_metric(n).options()
        extra = set(overrides.get(n, {})) - set(known)
        if extra:
            raise UnknownNameError(f"metric {n!r} has no option {sorted(extra)[0]!r}; its options: {', '.join(known) or 'none'}")
        out[n] = {**known, **overrides.get(n, {})}
    for n in overrides:
        if n not in names:
            raise UnknownNameError(f"options given for metric {n!r}, which is not evaluated")
    return out


def _method_options(methods: list[str], overrides: dict, seed: int) -> dict[str, dict]:
    from medlens.attribution.registry import get_method

    out = {}
    for n in methods:
        info = get_method(n)
        known = info.options()
        extra = set(overrides.get(n, {})) - set(known)
        if extra:
            raise UnknownNameError(f"method {n!r} has no option {sorted(extra)[0]!r}; its options: {', '.join(known) or 'none'}")
        opts = dict(overrides.get(n, {}))
        if info.random and "seed" in known:
            opts.setdefault("seed", seed)
        out[n] = opts
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
    progress: bool = True,
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
    progress : bool
        Show a progress bar.

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
    if s.target not in ("label", "predicted"):
        raise InputError(f"target must be 'label' or 'predicted', got {s.target!r}")
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
    classes = labels.long().cpu() if s.target == "label" else predicted
    if int(classes.max()) >= outputs.shape[1] or int(classes.min()) < 0:
        raise InputError(f"labels must lie in 0..{outputs.shape[1] - 1} for this model")

    config = _clean({
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
    with _exclusive(out):
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


@contextmanager
def _exclusive(out: Path) -> Iterator[None]:
    """Hold an advisory lock on ``out`` so two runs never append to one results file.

    The operating system releases the lock when the process dies, so a killed run leaves no
    stale lock behind (a lock file alone would block the resume).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no advisory locks on this platform
        yield
        return
    with open(out / LOCK_FILE, "a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            raise MedlensError(f"another medlens evaluation is writing to {out}; wait for it or use another folder") from err
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _run_locked(out: Path, plan: _Plan, *, restart: bool, progress: bool) -> dict:
    """Resume or start the results file in ``out`` and score what is missing."""
    from tqdm.auto import tqdm

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
        _repair(path)
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
            _append(fh, [config])

    needs_random = any(get_metric(m).needs_randomised for m in metrics)
    randomised = randomised_copy(model, seed=s.seed) if needs_random else None
    template = None
    if has_markers:
        first = int(torch.nonzero(marker_masks.reshape(n, -1).any(1))[0])
        template = (inputs[first], marker_masks[first])
    all_entries = ([(MODEL_ENTRY, "model")] if has_markers else []) + entries
    starts = list(range(0, n, s.cases_per_batch))
    total = len(starts) * len(all_entries)
    finished = sum(
        all((i, e) in done for i in range(st, min(st + s.cases_per_batch, n))) for st in starts for e, _ in all_entries
    )
    bar = tqdm(total=total, initial=finished, desc="evaluating", unit="method-batch", disable=not progress, leave=False)
    with open(path, "a", encoding="utf-8") as fh, open(out / TIMINGS_FILE, "a", encoding="utf-8") as timings:
        for start in starts:
            ids = torch.arange(start, min(start + s.cases_per_batch, n))
            x = inputs[ids].to(engine.model_device(model))
            target = Target(classes[ids].to(x.device))
            for entry, kind in all_entries:
                missing = [int(i) for i in ids if (int(i), entry) not in done]
                if not missing:
                    continue
                bar.set_postfix_str(entry)
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
                    records.append(_clean(rec))
                _append(fh, records)
                _append(timings, [{"method": entry, "samples": len(ids), "seconds": round(seconds, 4)}])
                bar.update(1)
    bar.close()
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


# --------------------------------------------------------------------------------------------
# Summary (from the results file alone)
# --------------------------------------------------------------------------------------------


def bootstrap_ci(values: torch.Tensor, *, n_boot: int = 2000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap confidence interval of the mean of ``values`` ``(n,)``."""
    n = len(values)
    if n == 0:
        return math.nan, math.nan
    if n == 1:
        return float(values[0]), float(values[0])
    gen = torch.Generator().manual_seed(int(seed))
    idx = torch.randint(n, (n_boot, n), generator=gen)
    means = values.to(torch.float64)[idx].mean(1)
    alpha = (1 - level) / 2
    lo, hi = torch.quantile(means, torch.tensor([alpha, 1 - alpha], dtype=torch.float64))
    return float(lo), float(hi)


def summarise(path: str | os.PathLike, *, n_boot: int = 2000) -> dict:
    """Summary of a results file: statistics, mean curves, shortcut audit, verdict.

    Returns
    -------
    dict
        ``config``; ``rows``: one per (method, metric) with ``n``, ``mean``, ``ci_low``,
        ``ci_high`` (95 % percentile bootstrap, seeded with the run's seed); ``curves``:
        ``{metric: {"fractions": [...], "methods": {method: mean curve}}}``; ``shortcut``
        (or ``None``); ``verdict`` (see :func:`trust_verdict`); ``complete``: whether every
        (sample, method) pair is present.
    """
    config, records = read_results(path)
    entries, kinds, metrics = config["entries"], config["kinds"], list(config["metrics"])
    by_entry: dict[str, list[dict]] = {e: [] for e in entries}
    model_records = []
    for r in records:
        if r["kind"] == "model":
            model_records.append(r)
        elif r["method"] in by_entry:
            by_entry[r["method"]].append(r)
    rows = []
    curves: dict[str, dict] = {}
    random = BASELINE_PREFIX + "random"
    random_values = {
        metric: {r["sample"]: r["metrics"][metric] for r in by_entry.get(random, []) if r["metrics"].get(metric) is not None}
        for metric in metrics
    }
    baseline_values = {
        entry: {
            metric: {r["sample"]: r["metrics"][metric] for r in by_entry[entry] if r["metrics"].get(metric) is not None}
            for metric in metrics
        }
        for entry in entries if kinds[entry] == "baseline"
    }
    for entry in entries:
        recs = sorted(by_entry[entry], key=lambda r: r["sample"])
        for metric in metrics:
            vals = torch.tensor(
                [r["metrics"][metric] for r in recs if r["metrics"].get(metric) is not None], dtype=torch.float64
            )
            lo, hi = bootstrap_ci(vals, n_boot=n_boot, seed=config["seed"])
            row = {
                "method": entry, "kind": kinds[entry], "metric": metric, "n": len(vals),
                "mean": float(vals.mean()) if len(vals) else math.nan, "ci_low": lo, "ci_high": hi,
            }
            # Paired with the random baseline on the same cases: far tighter than comparing two
            # marginal intervals, because case difficulty cancels.
            if entry != random and random_values[metric]:
                diffs = torch.tensor(
                    [r["metrics"][metric] - random_values[metric][r["sample"]] for r in recs
                     if r["metrics"].get(metric) is not None and r["sample"] in random_values[metric]],
                    dtype=torch.float64,
                )
                d_lo, d_hi = bootstrap_ci(diffs, n_boot=n_boot, seed=config["seed"])
                row["vs_random"] = {"n": len(diffs), "mean": float(diffs.mean()) if len(diffs) else math.nan,
                                    "ci_low": d_lo, "ci_high": d_hi}
            # Paired with every model-free baseline too (edge, centre): a method that localises no
            # better than a map that never looks at the model has not shown it finds the lesion.
            if kinds[entry] == "method":
                versus = {}
                for other in entries:
                    if kinds[other] != "baseline" or other == random or not baseline_values[other][metric]:
                        continue
                    ref = baseline_values[other][metric]
                    diffs = torch.tensor(
                        [r["metrics"][metric] - ref[r["sample"]] for r in recs
                         if r["metrics"].get(metric) is not None and r["sample"] in ref],
                        dtype=torch.float64,
                    )
                    if len(diffs):
                        d_lo, d_hi = bootstrap_ci(diffs, n_boot=n_boot, seed=config["seed"])
                        versus[other] = {"n": len(diffs), "mean": float(diffs.mean()), "ci_low": d_lo, "ci_high": d_hi}
                if versus:
                    row["vs_baselines"] = versus
            rows.append(row)
            series = [r["curves"][metric] for r in recs if metric in r.get("curves", {})]
            if series:
                mean_curve = torch.tensor(series, dtype=torch.float64).mean(0)
                steps = len(mean_curve) - 1
                block = curves.setdefault(metric, {"fractions": [k / steps for k in range(steps + 1)], "methods": {}})
                block["methods"][entry] = mean_curve.tolist()
    errors = {}
    for entry in entries:
        for r in by_entry[entry]:
            if "error" in r:
                errors.setdefault(entry, r["error"])
    n_expected = config["n_samples"] * (len(entries) + (1 if config.get("marker_audit") else 0))
    summary = {
        "config": config,
        "rows": _clean(rows),
        "curves": _clean(curves),
        "shortcut": _shortcut_summary(model_records, config) if model_records else None,
        "complete": len({(r["sample"], r["method"]) for r in records}) == n_expected,
        "errors": errors,
    }
    summary["verdict"] = trust_verdict(summary)
    return summary


def _shortcut_summary(records: list[dict], config: dict) -> dict:
    k = config["marker_class"]
    present = torch.tensor([r["metrics"]["marker_present"] for r in records], dtype=torch.bool)
    p0 = torch.tensor([r["metrics"]["p_original"] for r in records], dtype=torch.float64)
    p1 = torch.tensor([r["metrics"]["p_intervened"] for r in records], dtype=torch.float64)
    label = torch.tensor([-1 if r["label"] is None else r["label"] for r in records])
    predicted = torch.tensor([r["predicted"] for r in records])
    frac = torch.tensor([r["metrics"]["marker_fraction"] for r in records], dtype=torch.float64)
    has_label = label >= 0
    agree = has_label & (present == (label == k))
    conflict = has_label & ~(present == (label == k))

    def mean(t: torch.Tensor) -> float:
        return float(t.to(torch.float64).mean()) if t.numel() else math.nan

    absent = ~present
    flips = absent & (predicted != k) & (p1 > 0.5)
    return _clean({
        "marker_class": k,
        "n_with_marker": int(present.sum()),
        "n_without_marker": int(absent.sum()),
        "marker_area_fraction": mean(frac[present]),
        "delta_p_pasted": mean((p1 - p0)[absent]),
        "delta_p_erased": mean((p1 - p0)[present]),
        "flipped_by_pasting": mean(flips[absent & (predicted != k)]) if bool((absent & (predicted != k)).any()) else math.nan,
        "accuracy_marker_agrees": mean((predicted == label)[agree]),
        "accuracy_marker_conflicts": mean((predicted == label)[conflict]),
        "n_agree": int(agree.sum()),
        "n_conflict": int(conflict.sum()),
    })


def _stat(summary: dict, method: str, metric: str) -> dict | None:
    for row in summary["rows"]:
        if row["method"] == method and row["metric"] == metric and row["n"]:
            return row
    return None


_RANKED = ("deletion_auc", "insertion_auc", "pointing_game", "mass_in_mask", "iou")
#: The model is said to rely on the marker when pasting it raises the probability of its class by
#: more than this on average, or erasing it lowers that probability by more than this.
RELIANCE_THRESHOLD = 0.1


def trust_verdict(summary: dict) -> dict:
    """Which method to trust for this model, and why, from the summary's numbers.

    A method is *eligible* when it passes the randomisation check (mean Spearman correlation
    with the randomised model's map below :data:`SANITY_THRESHOLD`) and beats the random
    baseline on deletion AUC significantly (the 95 % bootstrap interval of the paired
    per-case difference lies below 0), both when computed. Eligible methods are ranked by their mean
    rank over the faithfulness and localisation metrics computed (deletion, insertion, pointing
    game, mass in mask, IoU); the best is recommended.

    Every method is also weighed against the model-free baselines (edge detector, centre
    prior; :func:`_against_baselines`): one that localises no better than a map made without the
    model is reported as such, in plain words ("Do not use ... to locate the finding"), whether
    or not it is recommended for showing what drives the model. On the lesion benchmark the
    edge map hits the lesion more often than gradient or integrated gradients, so this matters.

    Returns
    -------
    dict
        ``best`` (name or ``None``), ``ranking`` (eligible names, best first), ``methods``
        (per method: ``eligible``, ``problems``, ``mean_rank``, ``localisation``: the
        comparison with the model-free maps or ``None``), ``text`` (sentences for the
        report, each backed by its number), ``shortcut_text`` (or ``None``).
    """
    config = summary["config"]
    methods = [e for e in config["entries"] if config["kinds"][e] == "method"]
    random = BASELINE_PREFIX + "random"
    info: dict[str, dict] = {}
    errors = summary.get("errors", {})
    for m in methods:
        problems = []
        if m in errors:
            info[m] = {"eligible": False, "problems": [f"not scored: {errors[m]}"]}
            continue
        rho = _stat(summary, m, "randomisation_spearman")
        if rho is not None and not rho["mean"] < config["sanity_threshold"]:
            problems.append(
                f"its maps barely change when the model's weights are randomised (rank correlation "
                f"{rho['mean']:.2f} with the randomised model's map; threshold {config['sanity_threshold']:.2f}), "
                "so they show the input more than the model"
            )
        dele, rdele = _stat(summary, m, "deletion_auc"), _stat(summary, random, "deletion_auc")
        paired = (dele or {}).get("vs_random")
        if dele is not None and rdele is not None and paired and not paired["ci_high"] < 0:
            problems.append(
                f"removing its most important regions first does not lower the class probability significantly faster "
                f"than removing random ones (deletion AUC {dele['mean']:.3f} against {rdele['mean']:.3f} for a random map; "
                f"paired difference {paired['mean']:+.3f}, 95% CI [{paired['ci_low']:+.3f}, {paired['ci_high']:+.3f}] "
                f"over {paired['n']} cases)"
            )
        info[m] = {"eligible": not problems, "problems": problems, "localisation": _against_baselines(summary, m)}
    ranked_metrics = [k for k in _RANKED if k in config["metrics"]]
    for metric in ranked_metrics:
        higher = get_metric(metric).higher_is_better
        scored = [(m, _stat(summary, m, metric)) for m in methods]
        scored = [(m, s["mean"]) for m, s in scored if s is not None]
        order = sorted(scored, key=lambda t: -t[1] if higher else t[1])
        for rank, (m, _v) in enumerate(order, 1):
            info[m].setdefault("ranks", []).append(rank)
    for m in methods:
        ranks = info[m].pop("ranks", [])
        info[m]["mean_rank"] = sum(ranks) / len(ranks) if ranks else math.nan
    eligible = sorted((m for m in methods if info[m]["eligible"]), key=lambda m: (info[m]["mean_rank"], m))
    best = eligible[0] if eligible else None
    text = []
    if best is None:
        n_cases = config.get("n_samples", 0)
        text.append(
            f"No method can be recommended for this model: none of the {len(methods)} methods scored passes both "
            "the randomisation check and the deletion test against a random map"
            + (f" (with {n_cases} cases the confidence intervals are wide: score more cases)." if 0 < n_cases < 100 else ".")
        )
    elif not {"deletion_auc", "randomisation_spearman"} & set(config["metrics"]):
        # Without a faithfulness or sanity check, a ranking says where maps point, not whether
        # they can be trusted.
        text.append(
            f"Best on {', '.join(get_metric(k).label for k in ranked_metrics) or 'the metrics computed'}: {best}. "
            "Run the deletion and randomisation checks before trusting any method."
        )
    else:
        text.append(_recommendation(summary, best, len(methods), ranked_metrics))
        if len(eligible) > 1:
            runner = eligible[1]
            text.append(f"Runner-up: {runner} (mean rank {info[runner]['mean_rank']:.1f} against {info[best]['mean_rank']:.1f}).")
    for m in methods:
        if m in errors:
            text.append(f"{m} was not scored: {errors[m]}.")
            continue
        for problem in info[m]["problems"]:
            text.append(f"Do not rely on {m}: {problem}.")
        loc = info[m].get("localisation")
        if loc and loc["no_better_than"]:
            text.append(_localisation_sentence(m, loc))
    return {
        "best": best,
        "ranking": eligible,
        "methods": info,
        "text": text,
        "shortcut_text": _shortcut_text(summary, methods),
    }


#: Localisation metrics, in the order the verdict prefers for comparing with the model-free maps.
_LOCALISATION = ("pointing_game", "mass_in_mask", "iou")
#: How the report names each model-free baseline for a reader who knows no machine learning.
BASELINE_WORDS = {
    "edge": "an edge detector that never looks at the model",
    "centre": "a map that simply favours the centre of the image",
    "random": "a random map",
}


def _against_baselines(summary: dict, method: str) -> dict | None:
    """How ``method`` localises compared with the model-free baselines (edge, centre).

    The first localisation metric computed (pointing game, else mass in lesion, else IoU) is
    compared with each non-random baseline. The method localises *no better* than a baseline
    when the 95 % bootstrap interval of the paired per-case difference does not lie above 0
    (when only means are known, when its mean is not above the baseline's).

    Returns
    -------
    dict or None
        ``metric``, ``value``, ``baselines`` (``{name: mean}``), ``no_better_than`` (names,
        best baseline first); ``None`` without a localisation metric or baseline.
    """
    config = summary["config"]
    others = [e for e in config["entries"] if config["kinds"].get(e) == "baseline" and e != BASELINE_PREFIX + "random"]
    for metric in _LOCALISATION:
        if metric not in config["metrics"]:
            continue
        own = _stat(summary, method, metric)
        if own is None:
            continue
        refs = {b: _stat(summary, b, metric) for b in others}
        refs = {b: r for b, r in refs.items() if r is not None}
        if not refs:
            return None
        paired = own.get("vs_baselines") or {}
        worse = []
        for b, r in refs.items():
            p = paired.get(b)
            if (p is not None and not p["ci_low"] > 0) or (p is None and not own["mean"] > r["mean"]):
                worse.append(b)
        worse.sort(key=lambda b: -refs[b]["mean"])
        return {
            "metric": metric,
            "value": own["mean"],
            "baselines": {b[len(BASELINE_PREFIX):]: r["mean"] for b, r in refs.items()},
            "no_better_than": [b[len(BASELINE_PREFIX):] for b in worse],
        }
    return None


def _localisation_words(metric: str, value: float) -> str:
    if metric == "pointing_game":
        return f"its strongest point falls inside the lesion in {value:.0%} of cases"
    if metric == "mass_in_mask":
        return f"{value:.0%} of its highlighted area lies in the lesion"
    return f"its top region overlaps the lesion by {value:.0%} (IoU)"


def _localisation_sentence(method: str, loc: dict) -> str:
    """One plain sentence: ``method`` finds the lesion no better than a map that ignores the model."""
    versus = "; ".join(
        f"{BASELINE_WORDS.get(b, b + ' map')} scores {loc['baselines'][b]:.0%}" for b in loc["no_better_than"]
    )
    return (
        f"Do not use {method} to locate the finding: {_localisation_words(loc['metric'], loc['value'])}, "
        f"no better than maps made without the model ({versus})."
    )


def _recommendation(summary: dict, best: str, n_methods: int, ranked: list[str]) -> str:
    random = BASELINE_PREFIX + "random"
    parts = [f"Trust {best} for this model. Of the {n_methods} methods scored, it ranks best on average over "
             f"{', '.join(get_metric(k).label for k in ranked)}"]
    rho = _stat(summary, best, "randomisation_spearman")
    if rho is not None:
        parts.append(
            f"; its maps depend on the model (rank correlation {rho['mean']:.2f} with the map of a randomised model; "
            "a map that ignores the model scores near 1)"
        )
    sentences = ["".join(parts) + "."]
    for metric, what in (("deletion_auc", "Deletion AUC {v} against {r} for a random map (lower is better)."),
                         ("insertion_auc", "Insertion AUC {v} against {r} (higher is better).")):
        s, r = _stat(summary, best, metric), _stat(summary, random, metric)
        if s is not None and r is not None:
            sentences.append(what.format(v=f"{s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]", r=f"{r['mean']:.3f}"))
    pg, rpg = _stat(summary, best, "pointing_game"), _stat(summary, random, "pointing_game")
    mass = _stat(summary, best, "mass_in_mask")
    if pg is not None:
        against = f" (random map: {rpg['mean']:.0%})" if rpg is not None else ""
        tail = f", and {mass['mean']:.0%} of its positive attribution lies in the lesion" if mass is not None else ""
        sentences.append(f"Its maximum falls inside the lesion in {pg['mean']:.0%} of {pg['n']} cases{against}{tail}.")
    elif mass is not None:
        sentences.append(f"{mass['mean']:.0%} of its positive attribution lies in the lesion.")
    sens = _stat(summary, best, "max_sensitivity")
    if sens is not None:
        sentences.append(f"Input noise of a few percent of the intensity range changes its map by up to {sens['mean']:.0%} of its norm.")
    return " ".join(sentences)


def _shortcut_text(summary: dict, methods: list[str]) -> str | None:
    sc = summary.get("shortcut")
    if not sc:
        return None
    delta, erased = sc["delta_p_pasted"], sc["delta_p_erased"]
    acc_a, acc_c = sc["accuracy_marker_agrees"], sc["accuracy_marker_conflicts"]
    gap = (acc_a - acc_c) if acc_a is not None and acc_c is not None else None
    # Reliance is judged by intervention (the model's output moves when only the marker
    # changes); the accuracy gap is reported as supporting evidence, it also moves with chance.
    relies = (delta is not None and delta > RELIANCE_THRESHOLD) or (erased is not None and erased < -RELIANCE_THRESHOLD)
    cls = f"class {sc['marker_class']}"
    class_names = summary["config"].get("class_names")
    if class_names and sc["marker_class"] < len(class_names):
        cls = repr(class_names[sc["marker_class"]])
    numbers = []
    if delta is not None:
        numbers.append(
            f"pasting the marker onto the {sc['n_without_marker']} test images without it changes the probability of "
            f"{cls} by {delta:+.2f} on average"
            + (f" and turns {sc['flipped_by_pasting']:.0%} of those not predicted {cls} into {cls}" if sc["flipped_by_pasting"] is not None else "")
        )
    if erased is not None:
        numbers.append(f"erasing it from the {sc['n_with_marker']} images that carry it changes that probability by {erased:+.2f}")
    if gap is not None:
        numbers.append(
            f"accuracy is {acc_a:.2f} on the {sc['n_agree']} images where the marker agrees with the label and "
            f"{acc_c:.2f} on the {sc['n_conflict']} where it contradicts it"
        )
    head = "The model relies on the shortcut marker" if relies else "The model does not measurably rely on the shortcut marker"
    text = head + (": " + "; ".join(numbers) if numbers else "") + "."
    masses = [(m, _stat(summary, m, "marker_mass")) for m in methods]
    masses = [(m, s["mean"]) for m, s in masses if s is not None]
    if masses:
        area = sc["marker_area_fraction"]
        top_m, top_v = max(masses, key=lambda t: t[1])
        low_m, low_v = min(masses, key=lambda t: t[1])
        over = area and top_v / area >= 2
        text += (
            f" The marker covers {area:.1%} of the image but receives {low_v:.0%} ({low_m}) to {top_v:.0%} ({top_m}) of the "
            "methods' positive attribution on the images that carry it"
            + (f", up to {top_v / area:.0f} times its share of the image" if over else "")
        )
        if relies and over:
            text += ": the maps do point at the shortcut, so look for the marker in them."
        elif relies:
            text += ": the maps hardly show it, so an explanation alone would not reveal this shortcut."
        else:
            text += "."
    return text


def summary_table(summary: dict) -> tuple[list[str], list[list[Any]]]:
    """Headers and rows: one row per method (baselines last), ``mean [low, high]`` per metric."""
    config = summary["config"]
    metrics = list(config["metrics"])
    headers = ["method"] + [
        get_metric(m).label + {True: " (higher better)", False: " (lower better)", None: ""}[get_metric(m).higher_is_better]
        for m in metrics
    ] + ["n"]
    table = []
    for entry in config["entries"]:
        row: list[Any] = [entry.replace(BASELINE_PREFIX, "") + (" (baseline)" if config["kinds"][entry] == "baseline" else "")]
        n = 0
        for m in metrics:
            s = _stat(summary, entry, m)
            row.append("n/a" if s is None else f"{s['mean']:.3f} [{s['ci_low']:.3f}, {s['ci_high']:.3f}]")
            n = max(n, s["n"] if s else 0)
        row.append(n)
        table.append(row)
    return headers, table


def write_summary(out: str | os.PathLike, summary: dict) -> list[Path]:
    """Write ``summary.json`` and ``summary.csv`` into ``out`` (atomically); return the paths."""
    import csv
    import io

    out = Path(out)
    paths = []
    text = json.dumps(summary, indent=2, allow_nan=False)
    headers, rows = summary_table(summary)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["method", "kind", "metric", "n", "mean", "ci_low", "ci_high"])
    for r in summary["rows"]:
        writer.writerow([r["method"], r["kind"], r["metric"], r["n"], r["mean"], r["ci_low"], r["ci_high"]])
    for name, content in (("summary.json", text), ("summary.csv", buf.getvalue())):
        tmp = out / (name + ".tmp")
        tmp.write_text(content, encoding="utf-8")
        tmp.replace(out / name)
        paths.append(out / name)
    return paths
