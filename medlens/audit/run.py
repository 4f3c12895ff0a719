"""Run a cohort audit into a folder, resumably, and export what it found.

:func:`run_audit` plans fixed batches of the cases not yet in the store, runs them on an engine
and commits each batch as it finishes; :func:`analyse` reads the store alone and writes
``cases.csv``, ``cases.parquet`` and ``clusters.csv`` (SpRAy, :mod:`medlens.audit.strategies`).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from medlens.core.progress import Progress
from medlens.audit.cases import MASK_METRICS, AuditSettings, CaseFailure, CaseResult
from medlens.audit.engines import AUDIT, ENGINES, Work, model_to_bytes, run_local, run_ray
from medlens.audit.intervention import ModelRemoval, StoredRemoval
from medlens.audit.sources import SourceSpec, open_source
from medlens.audit.store import DB_FILE, AuditStore, locked, table, write_csv, write_parquet
from medlens.audit.strategies import FlagRule, Strategies, find_strategies
from medlens.audit.summary import summary_grid
from medlens.data.cases import Cases
from medlens.data.formats.folders import rows_without_file_note
from medlens.errors import InputError
from medlens.models.fingerprint import model_fingerprint

__all__ = ["AuditRun", "analyse", "labels_key", "path_key", "plan_batches", "run_audit", "run_batches", "stored_settings"]


@dataclass(frozen=True)
class AuditRun:
    """What one call of :func:`run_audit` did.

    Attributes
    ----------
    out : Path
    n_cases : int
        Cases in the data.
    n_new : int
        Cases computed and committed by this call (the rest were already done).
    seconds : float
        Wall time of the computing part.
    engine : str
    workers : dict
        Engine statistics (Ray: workers, retried batches, replaced workers).
    failures : list of CaseFailure
        Every case of the audit that could not be read, with its error.
    notes : tuple of str
        What was left out and why (metrics that need masks the data do not have).
    """

    out: Path
    n_cases: int
    n_new: int
    seconds: float
    engine: str
    workers: dict
    failures: list = field(default_factory=list)
    notes: tuple[str, ...] = ()

    @property
    def cases_per_second(self) -> float:
        return self.n_new / self.seconds if self.seconds > 0 else math.nan


def plan_batches(n_cases: int, batch_size: int, done: set[int]) -> list[list[int]]:
    """Fixed batches ``[0..b-1], [b..2b-1], ...`` minus the cases already done.

    A batch keeps its composition whatever is done, so recomputing a case gives the same
    numbers (the engine's chunks do not change).
    """
    batches = []
    for start in range(0, n_cases, batch_size):
        todo = [i for i in range(start, min(start + batch_size, n_cases)) if i not in done]
        if len(todo) == min(start + batch_size, n_cases) - start:
            batches.append(todo)
        elif todo:  # a partly done batch (only possible after a change of batch_size): keep it whole
            batches.append(list(range(start, min(start + batch_size, n_cases))))
    return batches


def run_audit(
    model: nn.Module,
    spec: SourceSpec,
    out: str | Path,
    settings: AuditSettings = AuditSettings(),
    *,
    meta: dict[str, Any] | None = None,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    restart: bool = False,
    progress: bool | Progress = False,
    limit: int | None = None,
    source: Cases | None = None,
) -> AuditRun:
    """Audit every case of ``spec`` with ``model`` into ``out`` (resuming what is there).

    Parameters
    ----------
    model : nn.Module
    spec : SourceSpec
    out : str or Path
        Output folder; its ``audit.sqlite`` is the store.
    settings : AuditSettings
        Localisation metrics are dropped when the data has no masks.
    meta : dict, optional
        The model file's metadata (class names, input shape), shipped with the model to Ray.
    engine : {"local", "ray"}
    address, workers :
        Ray only (:func:`medlens.audit.engines.run_ray`).
    restart : bool
        Discard a stored audit instead of resuming it.
    progress : bool
        Show a progress bar (cases per second, ETA); or a :class:`medlens.core.progress.Progress`.
    limit : int, optional
        Audit only the first ``limit`` cases.
    source : Cases, optional
        ``open_source(spec)`` when the caller opened it already (the data read once); the local
        engine runs on it.

    Returns
    -------
    AuditRun
    """
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; use {' or '.join(ENGINES)}")
    out = Path(out)
    source = open_source(spec) if source is None else source
    n = len(source) if limit is None else min(int(limit), len(source))
    if n < 1:
        raise InputError("the data holds no cases")
    notes: list[str] = [text for text in [getattr(source, "skipped", "")] if text]  # a folder's files that are no case
    notes += rows_without_file_note(getattr(source, "rows_without_file", 0))
    if not source.has_masks:
        skipped = [k for k in settings.metrics if k in MASK_METRICS]
        if skipped:
            notes.append(f"skipped {', '.join(skipped)}: the data have no evidence masks")
        settings = replace(
            settings,
            metrics=tuple(k for k in settings.metrics if k not in MASK_METRICS),
            metric_options={k: v for k, v in settings.metric_options.items() if k not in MASK_METRICS},
        )
    x0 = source.first_readable()
    grid = summary_grid(x0.shape[2:], settings.grid_cells)
    config = {
        "settings": settings.to_json(),
        "model": model_fingerprint(model),
        # not the number of cases: a run with --n can be extended by a later one
        # the data's identity, not its path: a folder's name may name a patient (audit.sqlite is shared)
        "data": json.dumps({"data": path_key(spec.data),
                            "split": spec.split,
                            # scans: the same files through another recipe or labels are another audit
                            **({"windows": spec.windows, "record_labels": labels_key(spec.record_labels)} if spec.windows is not None
                               else {} if spec.is_dataset else {"recipe": spec.recipe_object().to_dict(),
                                                           "labels": path_key(spec.labels) if spec.labels else None,
                                                           "named_by": "path" if spec.show_identifiers else "id"})}),
        "input": json.dumps({"shape": list(x0.shape[1:]), "grid": list(grid),
                             "class_names": list((meta or {}).get("class_names") or source.class_names)}),
    }
    def removal_tests(store: AuditStore) -> None:
        # the removal tests of the default analysis run here, in the driver, which holds the model
        # whatever the engine; analyse() re-reads their drops from the store
        results = store.results()
        if results:
            rule = FlagRule()
            removal = StoredRemoval(store, settings.cluster_method, results, rule.n_draws,
                                    ModelRemoval(model, source, results, grid, settings.batch_size, settings.seed,
                                                 rule.n_draws))
            find_strategies(results, settings, grid, rule=rule, removal=removal)

    added, seconds, stats, failures = run_batches(
        model, spec, out, config, settings, n, meta=meta, engine=engine, address=address, workers=workers,
        restart=restart, progress=progress, unit="case", then=removal_tests, source=source)
    return AuditRun(out, n, added, seconds, engine, stats, failures, tuple(notes))


def run_batches(model: nn.Module, spec: Any, out: Path, config: dict[str, str], settings: Any, n: int, *,
                work: Work = AUDIT, meta: dict | None, engine: str, address: str | None, workers: int | None,
                restart: bool, progress: bool | Progress, unit: str,
                then: Callable[[AuditStore], None] | None = None, source: Any = None) -> tuple[int, float, dict, list[CaseFailure]]:
    """The first ``n`` cases of ``spec`` not yet in the store ``out`` (started with ``config``, which
    refuses another audit's store), run batch by batch by ``work`` on ``engine`` and committed as
    each batch finishes (the local engine on ``source`` when given, opened already); ``then(store)``
    runs under the same lock once they are in. Returns the
    number of cases added, the seconds they took, the engine's statistics and the failures."""
    with locked(out), AuditStore(out / DB_FILE) as store:
        store.start(config, restart=restart)
        batches = plan_batches(n, settings.cases_per_batch, store.done())
        reporter = progress if isinstance(progress, Progress) else Progress(quiet=not progress)
        added, stats, start = 0, {}, time.perf_counter()
        with reporter.counter(sum(len(b) for b in batches), "audit", unit=unit) as advance:

            def on_done(results: list[CaseResult | CaseFailure], worker: str) -> None:
                nonlocal added
                added += store.add(results, worker=worker)
                advance(len(results))

            if engine == "local":
                run_local(model, spec, batches, settings, on_done, work=work, source=source)
            elif batches:
                stats = run_ray(model_to_bytes(model, meta or {}), spec, batches, settings, on_done, work=work,
                                address=address, workers=workers)
        seconds = time.perf_counter() - start
        failures = [f for f in store.failures() if f.index < n]
        if then is not None:
            then(store)
    return added, seconds, stats, failures


def stored_meta(out: str | Path) -> tuple[str, dict]:
    """The settings (as stored, JSON) and input description of the audit stored in ``out``,
    image or text."""
    path = Path(out) / DB_FILE
    if not path.exists():
        raise InputError(f"{out} holds no audit ({DB_FILE} is missing)")
    with AuditStore(path) as store:
        meta = store.meta()
    return meta["settings"], {**json.loads(meta["input"]), **json.loads(meta["data"])}


def stored_settings(out: str | Path) -> tuple[AuditSettings, dict]:
    """The settings and input description of the audit stored in ``out``."""
    settings, described = stored_meta(out)
    return AuditSettings.from_json(settings), described


@dataclass(frozen=True)
class Analysis:
    """The stored cases, their strategies and the files written."""

    results: list[CaseResult]
    settings: AuditSettings
    strategies: Strategies
    info: dict
    files: list[Path]
    failures: list[CaseFailure] = field(default_factory=list)


def analyse(out: str | Path, *, method: str | None = None, rule: FlagRule = FlagRule(),
            n_clusters: int | None = None, parquet: bool = True, model: nn.Module | None = None,
            spec: SourceSpec | None = None) -> Analysis:
    """Read the store in ``out``; write ``cases.csv``, ``cases.parquet`` and ``clusters.csv``.

    Parameters
    ----------
    method : str, optional
        Method whose maps SpRAy clusters (default: the audit's first).
    rule : FlagRule
    n_clusters : int, optional
        Force the number of clusters per class instead of the eigengap's choice.
    parquet : bool
        Also write ``cases.parquet`` (needs pyarrow).
    model, spec : optional
        The audited model and data: removal tests that :func:`run_audit` did not store (another
        method, rule or number of clusters) are measured and stored; without them such
        candidates are undecided.
    """
    out = Path(out)
    settings, info = stored_settings(out)
    with AuditStore(out / DB_FILE) as store:
        results = store.results()
        failures = store.failures()
        if not results:
            raise InputError(f"{out} holds no audited case yet")
        compute = None
        if model is not None and spec is not None:
            compute = ModelRemoval(model, open_source(spec), results, info["grid"], settings.batch_size, settings.seed,
                                   rule.n_draws)
        removal = StoredRemoval(store, settings.cluster_method if method is None else method, results, rule.n_draws,
                                compute)
        strategies = find_strategies(results, settings, info["grid"], method=method, rule=rule,
                                     n_clusters=n_clusters, removal=removal)
    columns, rows = table(results, settings, info.get("class_names") or ())
    files = [write_csv(out / "cases.csv", columns, rows)]
    if parquet:
        files.append(write_parquet(out / "cases.parquet", results, settings, info.get("class_names") or ()))
    files.append(write_csv(out / "clusters.csv", ["case", "class", "cluster", "flagged", "class_name"],
                           strategies.assignments(results, info.get("class_names") or ())))
    if failures:
        files.append(write_csv(out / "unreadable.csv", ["case", "error"], [[f.case, f.error] for f in failures]))
    return Analysis(results, settings, strategies, info, files, failures)


def _digest(text: str) -> str:
    """``sha256:`` and the first 16 hex digits of ``text``'s SHA-256: an identity without the text."""
    import hashlib

    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def path_key(path: str) -> str:
    """A path's identity for a resume check, without the path: a digest of its resolved form
    (a bundled data set's name as it is)."""
    p = Path(path)
    if not p.exists():
        return str(path)
    return _digest(str(p.resolve()))


def labels_key(labels: dict[str, str] | None) -> str | None:
    """Record labels' identity for a resume check, without the records' names (file names): a
    digest of the sorted pairs."""
    return None if labels is None else _digest(json.dumps(sorted(labels.items())))


def exemplar_maps(model: nn.Module, spec: SourceSpec, analysis: Analysis,
                  source: Cases | None = None) -> dict[int, tuple[torch.Tensor, torch.Tensor]]:
    """Input and full-resolution map of every exemplar, for the report.

    Returns ``{position in results: (input (C, *spatial), saliency (*spatial))}``; recomputes the
    clustered method's map for the exemplars only, on ``source`` when the caller opened it.
    """
    from medlens.attribution.explain import explain
    from medlens.evaluation.maps import saliency_map

    source = open_source(spec) if source is None else source
    method = analysis.strategies.method
    positions = sorted({e for cs in analysis.strategies.classes for c in cs.clusters for e in c.exemplars})
    out: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    for start in range(0, len(positions), 16):
        chunk = positions[start:start + 16]
        batch = source.load([analysis.results[p].index for p in chunk])
        target = torch.tensor([analysis.results[p].predicted for p in chunk])
        attribution = explain(model, batch.x, target, method, batch_size=analysis.settings.batch_size,
                              **analysis.settings.options_for(method))
        sal = saliency_map(attribution, batch.x.shape[2:], abs=True)
        for j, p in enumerate(chunk):
            out[p] = (batch.x[j].detach().cpu(), sal[j].detach().cpu())
    return out
