"""The ``predict`` use case: a model's prediction for every case of a data set, resumably.

:func:`predict_cases` takes a :class:`PredictRequest` and returns a :class:`PredictResult`. The
cases come from :mod:`medlens.app.predict_sources` (notes for a text model, signal windows for a
model trained on records, otherwise the case workflow: npz/bundled data, scans with labels); they
run in the audit's fixed batches on the audit's engines (:mod:`medlens.audit.engines`: in-process
or Ray) and each finished batch is committed to ``OUT/predictions.sqlite`` (the audit's store,
:class:`medlens.audit.store.AuditStore`), so a killed run resumes where it stopped. From the store
come ``OUT/predictions.csv`` (case, label, predicted class, the probability of every class, by
name), when labels exist, ``OUT/metrics.json`` (:mod:`medlens.app.predict_outputs`), and for scans,
data sets and signal windows ``OUT/familiarity.csv`` (:func:`medlens.app.audit_familiarity.check_cases`)
(records: what cutting the windows left out is a note).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from medlens.app.inputs import RecipeOptions, load_model_file, resolve_recipe
from medlens.app.predict_findings import finding_columns, finding_metrics, read_finding_labels
from medlens.app.predict_sources import open_predict_source, predict_spec
from medlens.audit.cases import CaseFailure, CaseResult
from medlens.audit.engines import ENGINES, Work, model_to_bytes, run_local, run_ray
from medlens.audit.run import plan_batches
from medlens.audit.store import AuditStore, locked
from medlens.core.files import write_csv, write_json
from medlens.core.progress import Progress
from medlens.data.cases import is_dataset
from medlens.data.notes_cases import NoteColumns
from medlens.errors import InputError

__all__ = ["PREDICT", "PredictRequest", "PredictResult", "PredictSettings", "predict_cases", "predict_indices"]

STORE_FILE = "predictions.sqlite"


@dataclass(frozen=True)
class PredictSettings:
    """How the cases are batched: ``cases_per_batch`` per unit of work (computing, committing,
    retrying) and the engine's fixed chunk ``batch_size``, so numbers never depend on free memory."""

    cases_per_batch: int = 64
    batch_size: int = 64

    def __post_init__(self) -> None:
        for name, value in (("cases_per_batch", self.cases_per_batch), ("batch_size", self.batch_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")


def predict_indices(model: torch.nn.Module, source: Any, indices: Sequence[int],
                    settings: PredictSettings) -> list[CaseResult | CaseFailure]:
    """The prediction of each case at ``indices`` (a :class:`CaseFailure` for each unreadable one)."""
    from medlens.core.checks import evaluation_mode, model_outputs
    from medlens.core.engine import Budget, model_device
    from medlens.core.targets import model_probabilities

    batch = source.load(indices)
    out: list[CaseResult | CaseFailure] = [CaseFailure(i, source.names[i], err) for i, err in batch.failed.items()]
    if batch.x is None:
        return out
    with evaluation_mode(model), torch.inference_mode():
        probs = model_probabilities(model_outputs(model, batch.x.to(model_device(model)), Budget(settings.batch_size)), model)
    probs = probs.detach().to("cpu", torch.float64)
    empty = torch.zeros(0, 0)
    for j, (i, name, label) in enumerate(zip(batch.indices, batch.cases, batch.labels)):
        out.append(CaseResult(int(i), str(name), None if label is None else int(label), int(probs[j].argmax()),
                              tuple(float(p) for p in probs[j]), {}, empty, torch.zeros(0)))
    return out


#: The engines' work for ``predict``: open the spec's cases, predict a batch.
PREDICT = Work(open_predict_source, predict_indices)


@dataclass(frozen=True)
class PredictRequest:
    """The arguments of ``medlens predict``.

    ``data``: an npz or bundled data set (``split``), a scan file or folder of scans (``labels``:
    CSV ``case,label``), a notes file for a text model (``text_column``/``label_column``), or a
    record / folder of records for a model trained on windows (``labels``: CSV ``record,label`` for
    fixed windows). ``engine`` ``"local"`` or ``"ray"`` (``address``, ``workers``); ``restart``
    discards stored predictions instead of resuming them.
    """

    model: str
    data: str
    out: str
    split: str = "test"
    labels: str | None = None
    text_column: str = "text"
    label_column: str = "label"
    recipe: RecipeOptions = field(default_factory=RecipeOptions)
    engine: str = "local"
    address: str | None = None
    workers: int | None = None
    cases_per_batch: int = 64
    batch_size: int | None = None
    restart: bool = False
    limit: int | None = None
    quiet: bool = True
    show_identifiers: bool = False  # name cases by their files, records or the notes file's ids (else case-0000...)
    multi_label: bool = False  # one sigmoid per finding (also the model file's meta["multilabel"])

    def validate(self) -> None:
        """Fail, in one line, on what can be told before any work."""
        if self.engine not in ENGINES:
            raise InputError(f"unknown engine {self.engine!r}; use {' or '.join(ENGINES)}")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"--limit must be at least 1, got {self.limit}")


@dataclass
class PredictResult:
    """What :func:`predict_cases` did and wrote."""

    out: Path
    kind: str
    n_cases: int
    n_new: int
    seconds: float
    metrics: dict[str, Any] | None
    files: list[Path]
    failures: list[CaseFailure]
    notes: list[str]


def predict_cases(request: PredictRequest | None = None, **kwargs: Any) -> PredictResult:
    """Predict every case of ``request.data`` into ``request.out`` (resuming what is stored there).
    Takes a :class:`PredictRequest` or its fields as keywords."""
    from medlens.app.predict_outputs import write_outputs
    from medlens.models.fingerprint import model_fingerprint

    request = request if request is not None else PredictRequest(**kwargs)
    request.validate()
    model, meta = load_model_file(request.model, request.multi_label)
    scans = not is_dataset(request.data) and not meta.get("tokenizer") and not meta.get("windows")
    findings = list(meta.get("class_names") or ())
    finding_labels = (request.labels if scans and meta.get("multilabel") and request.labels
                      and finding_columns(request.labels, findings) else None)  # one 0/1 column per finding
    spec = predict_spec(request.data, meta, split=request.split,
                        labels=None if finding_labels else request.labels,
                        recipe=resolve_recipe(request.recipe, meta) if scans else None,
                        columns=NoteColumns(text=request.text_column, label=request.label_column),
                        show_identifiers=request.show_identifiers, leads=request.recipe.leads if request.recipe else None)
    settings = PredictSettings(request.cases_per_batch, 64 if request.batch_size is None else request.batch_size)
    source = open_predict_source(spec)
    n = len(source) if request.limit is None else min(request.limit, len(source))
    if n < 1:
        raise InputError(f"{request.data} holds no cases")
    source.first_readable()  # nothing readable (a record given to a scan model): one line, nothing written
    class_names = list(meta.get("class_names") or source.class_names)
    truncation = source.truncation_of(n) if hasattr(source, "truncation_of") else ""  # of the notes used
    notes = [text for text in (getattr(source, "skipped", ""), truncation) if text]
    config = {"model": model_fingerprint(model), "data": json.dumps(spec.describe(), sort_keys=True),
              "settings": json.dumps({"batch_size": settings.batch_size}), "class_names": json.dumps(class_names)}
    out = Path(request.out)
    with locked(out, "predict"), AuditStore(out / STORE_FILE) as store:
        store.start(config, restart=request.restart)
        batches = plan_batches(n, settings.cases_per_batch, store.done())
        reporter = Progress(quiet=request.quiet)
        added, start, todo = 0, time.perf_counter(), sum(len(b) for b in batches)
        with reporter.counter(todo, "predict", unit="case") as advance:

            def on_done(results: list, worker: str) -> None:
                nonlocal added
                added += store.add(results, worker=worker)
                advance(len(results))

            if request.engine == "local":
                run_local(model, spec, batches, settings, on_done, work=PREDICT, source=source)
            elif batches:
                run_ray(model_to_bytes(model, meta), spec, batches, settings, on_done, work=PREDICT,
                        address=request.address, workers=request.workers)
        seconds = time.perf_counter() - start
        results = [r for r in store.results() if r.index < n]
        failures = [f for f in store.failures() if f.index < n]
    multilabel = bool(meta.get("multilabel"))
    matrix = None
    if multilabel and finding_labels:
        from medlens.data.formats.folders import rows_without_file_note

        matrix, without_file = read_finding_labels(finding_labels, [row["file"] for row in source.identifier_rows()[:n]],
                                                   findings)
        notes += rows_without_file_note(without_file)
    elif multilabel and getattr(source, "findings", None) is not None:
        matrix = source.findings[:n].double()  # a multi-label npz's own (N, K) labels
    metrics, files = write_outputs(out, results, failures, class_names, multilabel=multilabel, findings=matrix)
    if matrix is not None:
        metrics = _finding_metrics(matrix, results, findings, n)
        if metrics is not None:
            files.append(write_json(out / "metrics.json", metrics))
    elif multilabel and any(r.label is not None for r in results):
        notes.append("no metrics: a multi-label model's labels must be one 0/1 column per finding (a CSV with "
                     "columns case and each finding's name), and these labels give one class per case")
    if spec.kind in ("cases", "notes", "records"):  # scans, data sets, notes and signal windows: the audit's familiarity check, case by case
        files.append(_familiarity(model, meta, source, results, out, notes))
    if hasattr(source, "identifier_rows"):  # scans and notes are named case-0000...: the one file that maps them
        rows = source.identifier_rows()[:n]
        files.append(write_csv(out / "identifiers.csv", rows))
    return PredictResult(out, spec.kind, n, added, seconds, metrics, files, failures, notes)


def _finding_metrics(labels: torch.Tensor, results: Sequence[CaseResult], findings: list[str],
                     n: int) -> dict[str, Any] | None:
    """The per-finding metrics of a multi-label model against the 0/1 ``labels`` ``(n, K)`` (NaN: not labelled)."""
    probs = torch.full((n, len(findings)), math.nan, dtype=torch.float64)
    for r in results:
        probs[r.index] = torch.tensor(r.probabilities, dtype=torch.float64)
    read = ~probs.isnan().any(1)  # an unreadable case has no prediction
    return finding_metrics(probs[read], labels[read], findings)


def _familiarity(model: Any, meta: dict, source: Any, results: Sequence[CaseResult], out: Path,
                 notes: list[str]) -> Path:
    """Check each predicted case against the model's training data (``OUT/familiarity.csv``, as the
    audit and ``evaluate`` do) and put first among ``notes`` how many are unlike it."""
    from medlens.app.audit_familiarity import FILE, cohort_familiarity

    cohort = cohort_familiarity(model, meta, source, results, out, what="predicted")
    if cohort.unlike:
        notes.insert(0, cohort.sentence)
    return out / FILE
