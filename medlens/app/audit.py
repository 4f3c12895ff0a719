"""The ``audit`` use case: explain a whole data set, score every case, find the model's strategies.

:func:`audit_cohort` takes an :class:`AuditRequest` and returns an :class:`AuditOutcome`. The cases
stream from the case workflow to the engine's workers (:class:`medlens.audit.sources.SourceSpec`
is the picklable description each worker opens); results go to ``OUT/audit.sqlite`` as they
finish, then SpRAy clusters the maps and ``audit.html`` is written. A text model is audited on a
notes file by :mod:`medlens.app.audit_notes` (tokens instead of maps).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from medlens.app.inputs import RecipeOptions, load_model_file, resolve_recipe
from medlens.app.text_inputs import is_text_model
from medlens.errors import FileFormatError, InputError, MedlensError


@dataclass(frozen=True)
class AuditRequest:
    """The arguments of ``medlens audit``; ``methods`` empty: those ``leaderboard`` trusts, else
    the defaults. ``cluster_method`` ``None``: SmoothGrad. ``memory_mb`` sets the readers' decoding
    limit only (the audit fixes the engine's chunk size so that both engines give the same
    numbers); ``show_identifiers`` names scans by path in every output instead of by pseudonymous
    id; ``allow_outside`` lets the labels file name masks outside the data folder.

    A text model is audited on a notes file (:mod:`medlens.app.audit_notes`): ``text_column`` and
    ``label_column`` name its columns, ``top_tokens`` tokens per predicted class are tested, and
    so is each of ``tokens`` (vocabulary entries) in every class whose notes contain it."""

    model: str
    data: str
    out: str
    labels: str | None = None
    split: str = "test"
    methods: Sequence[str] = ()
    leaderboard: str | None = None
    cluster_method: str | None = None
    metric_options: Mapping[str, Any] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    cases_per_batch: int = 16
    engine: str = "local"
    address: str | None = None
    workers: int | None = None
    restart: bool = False
    show_identifiers: bool = False
    allow_outside: bool = False
    recipe: RecipeOptions = field(default_factory=RecipeOptions)
    limit: int | None = None
    batch_size: int | None = None
    memory_mb: float | None = None
    seed: int = 0
    quiet: bool = True
    text_column: str = "text"
    label_column: str = "label"
    tokens: Sequence[str] = ()
    top_tokens: int = 10
    multi_label: bool = False  # one sigmoid per finding (also the model file's meta["multilabel"])

    def validate(self) -> None:
        """Fail, in one line, on what can be told before any work."""
        from medlens.core.files import check_output_folder

        check_output_folder(self.out)
        if self.cases_per_batch < 1:
            raise MedlensError(f"--cases-per-batch must be at least 1, got {self.cases_per_batch}")
        if self.workers is not None and self.workers < 1:
            raise MedlensError(f"--workers must be at least 1, got {self.workers}")
        if self.top_tokens < 0:
            raise MedlensError(f"--top-tokens must be at least 0, got {self.top_tokens}")


@dataclass
class AuditOutcome:
    """The run (:class:`medlens.audit.run.AuditRun`), its analysis (:class:`medlens.audit.run.Analysis`,
    or :class:`medlens.audit.run_notes.NoteAnalysis` for notes), the flagged strategies (the
    depended-on tokens) in words, the methods used and why, notes for the user, and the files
    written."""

    run: Any
    analysis: Any
    flagged: list[str]
    methods: tuple[str, ...]
    source_of_methods: str
    notes: list[str]
    out: str
    identifiers: bool = False  # identifiers.csv written (scans, records: it maps their ids to files)
    files: tuple[str, ...] = ()


def trusted_methods(path: str | None) -> list[str] | None:
    """The ranking of a ``medlens evaluate`` output folder (or its summary.json), best first."""
    if path is None:
        return None
    p = Path(path)
    p = p / "summary.json" if p.is_dir() else p
    try:
        summary = json.loads(p.read_text(encoding="utf-8"))
        ranking = list(summary["verdict"]["ranking"])
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise FileFormatError(f"{path!r} is not a leaderboard summary (medlens evaluate's summary.json): {err}") from err
    return ranking or None


def audit_cohort(request: AuditRequest | None = None, **kwargs: Any) -> AuditOutcome:
    """Audit every case of ``request.data`` and write cases.csv, cases.parquet, clusters.csv and
    audit.html into ``request.out`` (resumable); for a text model, :func:`medlens.app.audit_notes.audit_notes`.
    Takes an :class:`AuditRequest` or its fields."""
    from medlens.app.options import options_per_method, options_per_metric
    from medlens.attribution.explain import check_runnable, runnable_methods
    from medlens.audit.cases import DEFAULT_METHODS, AuditSettings
    from medlens.audit.run import analyse, exemplar_maps, run_audit
    from medlens.app.predict_sources import window_labels
    from medlens.audit.sources import SourceSpec, open_source
    from medlens.data.record_cases import model_windows
    from medlens.report.audit import audit_report, flagged_sentences

    request = request if request is not None else AuditRequest(**kwargs)
    request.validate()
    model, meta = load_model_file(request.model, request.multi_label)
    if is_text_model(meta):  # notes: token scores, deletion curves and the token test
        from medlens.app.audit_notes import audit_notes

        return audit_notes(request, model, meta)
    if request.tokens:
        raise InputError("--tokens is for a text model: this model reads images or signals")
    request = replace(request, cluster_method=request.cluster_method or "smoothgrad")
    trusted = trusted_methods(request.leaderboard)
    notes: list[str] = []
    if request.methods:
        methods, source_of_methods = tuple(request.methods), "chosen"
    elif trusted:
        methods, source_of_methods = tuple(trusted), "trusted by the leaderboard"
    else:
        methods, source_of_methods = DEFAULT_METHODS, "default"
    options = options_per_method(request.options, methods + (request.cluster_method,))
    if source_of_methods == "chosen":
        for m in methods:
            check_runnable(model, m, options.get(m))
    else:
        kept, note = runnable_methods(model, list(methods), options)
        methods = tuple(kept) or ("integrated_gradients",)
        notes += [note] if note else []
    check_runnable(model, request.cluster_method, options.get(request.cluster_method))
    settings = AuditSettings(
        methods=methods,
        cluster_method=request.cluster_method,
        method_options={k: v for k, v in options.items() if k in methods + (request.cluster_method,)},
        metric_options=options_per_metric(request.metric_options),
        cases_per_batch=request.cases_per_batch,
        **({"batch_size": request.batch_size} if request.batch_size is not None else {}),
        seed=request.seed,
    )
    shape = meta.get("input_shape")
    windows = model_windows(meta, request.data, leads=request.recipe.leads)
    spec = SourceSpec(str(request.data), request.split, None if shape is None else tuple(shape),
                      labels=None if windows else request.labels, class_names=tuple(meta.get("class_names") or ()),
                      show_identifiers=request.show_identifiers, memory_mb=request.memory_mb,
                      allow_outside=request.allow_outside, windows=windows,
                      record_labels=window_labels(request.labels, windows) if windows else None)
    if windows is None and not spec.is_dataset:
        spec = replace(spec, recipe=resolve_recipe(request.recipe, meta).to_dict())
    elif request.labels and spec.is_dataset:
        raise MedlensError("--labels is for scans and records: an npz data set carries its own labels")
    source = open_source(spec)  # read once: the audit, its identifiers, familiarity and exemplars
    result = run_audit(model, spec, request.out, settings, meta=meta, engine=request.engine, address=request.address,
                       workers=request.workers, restart=request.restart, progress=not request.quiet,
                       limit=request.limit, source=source)
    analysis = analyse(request.out)
    named = not spec.is_dataset  # scans and records are named by ids that identifiers.csv maps
    if named:
        _write_identifiers(source, request.out)
    from medlens.app.audit_familiarity import cohort_familiarity
    from medlens.app.model_quality import model_warnings

    cohort = cohort_familiarity(model, meta, source, analysis.results, request.out)
    warnings = [w["message"] for w in model_warnings(meta)]
    exemplars = exemplar_maps(model, spec, analysis, source)
    if named:
        from medlens.app.pixel_privacy import blank_identifying_exemplars

        exemplars, withheld = blank_identifying_exemplars(
            exemplars, lambda pos: source.case(analysis.results[pos].index), show_identifiers=request.show_identifiers)
        warnings += withheld
    class_names = meta.get("class_names") or analysis.info.get("class_names") or []
    report = audit_report(
        analysis, exemplars, class_names=class_names, show_identifiers=request.show_identifiers,
        familiarity=cohort.sentence, familiarity_unlike=cohort.unlike > 0, warnings=warnings,
        subtitle=f"model {Path(request.model).name}; data {_data_words(request, spec)}; "
                 f"{len(analysis.results)} cases; methods ({source_of_methods}): {', '.join(settings.methods)}; "
                 f"maps clustered: {analysis.strategies.method}"
                 + (f"; {len(analysis.failures)} unreadable case(s) left out (unreadable.csv)" if analysis.failures else ""),
    )
    report.write(Path(request.out) / "audit.html")
    sentences = warnings + ([cohort.sentence] if cohort.unlike else []) + list(flagged_sentences(analysis.strategies, class_names))
    return AuditOutcome(result, analysis, sentences,
                        tuple(settings.methods), source_of_methods, notes + list(result.notes), request.out,
                        named)


def _data_words(request: AuditRequest, spec: Any) -> str:
    """The data as the report names it: a data set by name, scans by name only when asked (a
    folder's name may name a patient)."""
    if spec.is_dataset or request.show_identifiers:
        return f"{Path(str(request.data)).name}/{request.split}" if spec.is_dataset else Path(str(request.data)).name
    if spec.windows is not None:
        return f"signal records, {spec.windows.get('kind', 'beats')} windows"
    return "scans (files in identifiers.csv)"


def _write_identifiers(source: Any, out: str) -> None:
    """``OUT/identifiers.csv``: each scan case's (or record's) id and the file it came from (the
    one output that names files)."""
    from medlens.core.files import write_csv

    write_csv(Path(out) / "identifiers.csv", source.identifier_rows())
