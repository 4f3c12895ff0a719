"""The ``evaluate`` use case: score every explanation method on a data set and write a leaderboard.

:func:`evaluate_methods` takes an :class:`EvaluateRequest` and returns an :class:`EvaluateResult`;
the cases come from the case workflow (:func:`medlens.app.inputs.model_cases`), gathered in
memory (the leaderboard scores them together).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from medlens.app.inputs import RecipeOptions, load_model_file, model_cases, target_class
from medlens.app.text_inputs import is_text_model
from medlens.core.files import write_csv
from medlens.data.record_cases import model_windows
from medlens.errors import InputError, MedlensError


@dataclass(frozen=True)
class EvaluateRequest:
    """The arguments of ``medlens evaluate``; ``methods`` / ``metrics`` are ``"all"`` or names.
    ``memory_mb`` sets the readers' decoding limit only (evaluate fixes the engine's chunk size);
    scans are named by pseudonymous ids unless ``show_identifiers`` (their files in
    ``identifiers.csv``); ``allow_outside`` lets the labels file name masks outside the data folder."""

    model: str
    data: str
    out: str
    labels: str | None = None
    split: str = "test"
    methods: str | Sequence[str] = "all"
    metrics: str | Sequence[str] = "all"
    baselines: Sequence[str] = ("random", "centre", "edge")
    target: str | None = None  # label, predicted, or a class (a finding) by name or index
    cases_per_batch: int = 16
    options: Mapping[str, Any] = field(default_factory=dict)
    metric_options: Mapping[str, Any] = field(default_factory=dict)
    restart: bool = False
    recipe: RecipeOptions = field(default_factory=RecipeOptions)
    limit: int | None = None
    batch_size: int | None = None
    memory_mb: float | None = None
    seed: int = 0
    quiet: bool = True
    show_identifiers: bool = False
    allow_outside: bool = False
    multi_label: bool = False  # one sigmoid per finding (also the model file's meta["multilabel"])

    def validate(self) -> None:
        """Fail, in one line, on what can be told before any work."""
        from medlens.core.files import check_output_folder

        check_output_folder(self.out)
        if self.cases_per_batch < 1:
            raise MedlensError(f"--cases-per-batch must be at least 1, got {self.cases_per_batch}")


@dataclass
class EvaluateResult:
    """The leaderboard summary, the notes for the user, the cases left out and the number scored."""

    summary: dict
    notes: list[str]
    failures: list[list[str]]
    n: int
    out: str


@dataclass
class GatheredCases:
    """What evaluate scores: inputs, labels (or None), masks and markers (or None), and notes."""

    inputs: torch.Tensor
    labels: torch.Tensor | None
    masks: torch.Tensor | None
    markers: torch.Tensor | None
    name: str
    class_names: tuple[str, ...] = ()
    failures: list[list[str]] = field(default_factory=list)
    unlabelled: int = 0
    identifiers: list[dict[str, str]] = field(default_factory=list)
    source: Any = None  # the Cases the inputs came from (case(i) reads one again, for the familiarity check)
    kept: list[int] = field(default_factory=list)  # position in ``source`` of each input
    names: list[str] = field(default_factory=list)  # the name of each input in outputs (never a path)

    @property
    def n(self) -> int:
        return len(self.inputs)

    @property
    def has_masks(self) -> bool:
        return self.masks is not None and bool(torch.as_tensor(self.masks).any())

    @property
    def has_markers(self) -> bool:
        return self.markers is not None and bool(torch.as_tensor(self.markers).any())


def gather_cases(request: EvaluateRequest, meta: dict) -> GatheredCases:
    """Every case evaluate scores, in memory: a data set's split (labels, masks, markers), the
    windows a model trained on signal windows cuts from records, or the readable scans through
    the model's recipe (``request.limit`` of them)."""
    windows = model_windows(meta, request.data, leads=request.recipe.leads)
    if windows is not None:
        return _record_windows(request, windows)
    cases = model_cases(request.data, meta, split=request.split, recipe=request.recipe, labels=request.labels,
                        show_identifiers=request.show_identifiers, memory_mb=request.memory_mb,
                        allow_outside=request.allow_outside)
    if cases.is_dataset:
        ds = cases.dataset
        every = range(len(cases))
        single = cases.findings is None  # a multi-label data set gives no single class per case
        return GatheredCases(ds.inputs, ds.labels if single else None, ds.masks,
                             cases.markers(every) if cases.has_markers else None,
                             cases.title, tuple(ds.class_names), unlabelled=0 if single else len(ds), source=cases,
                             kept=list(every), names=[str(i) for i in every])
    n = len(cases) if request.limit is None else min(request.limit, len(cases))
    x, kept, failed = cases.scans.load(range(n))
    failures = [[cases.names[i], cases.withheld(i, err)] for i, err in sorted(failed.items())]
    if x is None:
        first = failures[0][1] if failures else ""
        raise InputError(f"nothing readable in the data ({len(failures)} case(s); first error: {first})")
    labels = [cases.scans.labels[i] for i in kept]
    unlabelled = sum(v is None for v in labels)
    return GatheredCases(x, None if unlabelled else torch.tensor(labels, dtype=torch.long), cases.masks(kept), None,
                         f"{cases.title if request.show_identifiers else 'scans'} ({len(kept)} scans)",
                         tuple(meta.get("class_names") or ()),
                         failures, unlabelled, cases.identifier_rows(), source=cases, kept=list(kept),
                         names=[cases.names[i] for i in kept])


def _record_windows(request: EvaluateRequest, windows: dict) -> GatheredCases:
    """The windows of signal records, cut as the model was trained on them (labelled by their
    annotations, or fixed windows by ``--labels`` ``record,label``)."""
    from medlens.app.predict_sources import window_labels
    from medlens.data.record_cases import RecordCases

    cases = RecordCases(request.data, windows, window_labels(request.labels, windows),
                        show_identifiers=request.show_identifiers)
    n = len(cases) if request.limit is None else min(request.limit, len(cases))
    batch = cases.load(range(n))
    unlabelled = sum(v is None for v in batch.labels)
    return GatheredCases(batch.x, None if unlabelled else torch.tensor(batch.labels, dtype=torch.long), None, None,
                         f"signal records ({n} {'beat' if windows.get('kind', 'beats') == 'beats' else 'fixed'} windows)", cases.class_names,
                         identifiers=cases.identifier_rows(), unlabelled=unlabelled, source=cases, kept=list(range(n)),
                         names=cases.names[:n])


def _names(value: str | Sequence[str]) -> object:
    if isinstance(value, str):
        return "all" if value.strip() == "all" else [v.strip() for v in value.split(",") if v.strip()]
    return list(value)


def evaluate_methods(request: EvaluateRequest | None = None, **kwargs: Any) -> EvaluateResult:
    """Score the methods of ``request`` on its data and write the leaderboard into ``request.out``
    (results.jsonl, resumable; summary.json/csv, curves.png, report.html; unreadable.csv for
    scans that could not be read). Takes an :class:`EvaluateRequest` or its fields as keywords."""
    from medlens.app.evaluation_section import write_leaderboard_outputs
    from medlens.app.options import options_per_method, options_per_metric
    from medlens.attribution.explain import check_runnable, methods as registered_methods, runnable_methods
    from medlens.evaluation.leaderboard import LeaderboardSettings, evaluate

    request = request if request is not None else EvaluateRequest(**kwargs)
    request.validate()
    model, meta = load_model_file(request.model, request.multi_label)
    if is_text_model(meta):
        raise InputError("evaluate scores maps of images, volumes and signals; this model reads text: "
                         "medlens audit --data NOTES.csv scores its explanations on tokens (deletion and insertion AUC)")
    data = gather_cases(request, meta)
    target: str | int = request.target or ("label" if data.labels is not None else "predicted")
    if target not in ("label", "predicted"):  # a class (a finding) explained on every case
        target = target_class(target, meta)
    if target == "label" and data.labels is None:
        raise MedlensError(f"--target label needs a label for every case: {data.unlabelled} of {data.n} case(s) have "
                           "none (give --labels FILE with columns case,label, or --target predicted)")
    methods = _names(request.methods)
    options = options_per_method(request.options, methods)
    notes: list[str] = [text for text in [getattr(data.source, "skipped", "")] if text]  # records: what was not cut
    if isinstance(target, int):
        names = list(meta.get("class_names") or data.class_names)
        notes.append(f"explained {names[target] if 0 <= target < len(names) else f'class {target}'} on every case "
                     "(--target)")
    elif request.target is None and target == "predicted" and getattr(data.source, "findings", None) is not None:
        notes.append("explained each case's highest-scoring finding: a multi-label data set gives no single class per "
                     "case (--target FINDING explains one finding on every case)")
    elif request.target is None and target == "predicted":
        notes.append(f"explained the predicted class: {data.unlabelled} of {data.n} case(s) have no label "
                     "(--labels FILE gives them)")
    if methods == "all":  # on a TorchScript model, "all" leaves out the methods that read layers
        runnable, note = runnable_methods(model, registered_methods(), options)
        if note:
            methods, options = runnable, {k: v for k, v in options.items() if k in runnable}
            notes.append(note)
    for m in ([] if methods == "all" else methods):
        check_runnable(model, m, options.get(m))
    metrics = _names(request.metrics)
    if metrics == "all":
        notes += skipped_metrics(data.has_masks, data.has_markers)
    n = data.n if request.limit is None else min(request.limit, data.n)
    settings = LeaderboardSettings(
        methods=methods,
        metrics=metrics,
        baselines=tuple(request.baselines),
        target=target,
        seed=request.seed,
        cases_per_batch=request.cases_per_batch,
        **({"batch_size": request.batch_size} if request.batch_size is not None else {}),
        method_options=options,
        metric_options=options_per_metric(request.metric_options),
    )
    summary = evaluate(
        model,
        data.inputs[:n],
        None if data.labels is None else data.labels[:n],
        None if data.masks is None else data.masks[:n],
        None if data.markers is None else data.markers[:n],
        out=request.out,
        settings=settings,
        data_name=data.name,
        class_names=meta.get("class_names") or data.class_names,
        restart=request.restart,
        progress=not request.quiet,
    )
    cautions = _cautions(model, meta, data, n, request.out)
    summary["warnings"] = cautions
    write_leaderboard_outputs(request.out, summary, cautions=cautions)
    if data.failures:
        write_csv(Path(request.out) / "unreadable.csv", [{"case": c, "error": e} for c, e in data.failures],
                  ["case", "error"])
    if data.identifiers:
        write_csv(Path(request.out) / "identifiers.csv", data.identifiers)
    return EvaluateResult(summary, notes, data.failures, n, request.out)


def _cautions(model: Any, meta: dict, data: GatheredCases, n: int, out: str) -> list[str]:
    """What to read before the leaderboard: the model's own record (no better than the most
    frequent class) and how many scored cases are unlike its training data (``familiarity.csv``)."""
    from functools import partial

    from medlens.app.audit_familiarity import check_cases
    from medlens.app.model_quality import model_warnings

    cautions = [w["message"] for w in model_warnings(meta)]
    if data.source is not None:
        entries = [(data.names[j], partial(data.source.case, data.kept[j])) for j in range(min(n, len(data.kept)))]
        cohort = check_cases(model, meta, entries, out, what="evaluated")
        if cohort.unlike:
            cautions.append(cohort.sentence)
    return cautions


def skipped_metrics(has_masks: bool, has_markers: bool) -> list[str]:
    """What ``--metrics all`` leaves out for data without evidence masks or marker masks, in words."""
    from medlens.evaluation.registry import get_metric, metric_names

    notes = []
    for needs, have, what in (("needs_masks", has_masks, "evidence masks"), ("needs_marker", has_markers, "shortcut-marker masks")):
        skipped = [n for n in metric_names() if getattr(get_metric(n), needs) and not have]
        if skipped:
            notes.append(f"skipped {', '.join(skipped)}: the data have no {what}")
    return notes
