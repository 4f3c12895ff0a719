"""The ``report`` use case: a case report a clinician can read, for one scan (or the first cases of
a data set).

:func:`report_case` takes a :class:`ReportRequest` and returns a :class:`ReportResult`; the case
comes from the case workflow, its identifiers are kept apart and withheld unless asked for, the
page is computed by :func:`medlens.app.case_report.case_report` and written by
:mod:`medlens.report.case`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from medlens.app.inputs import RecipeOptions, load_model_file, model_cases, refuse_index, target_class
from medlens.core.files import staged_folder, write_csv, write_json
from medlens.data.cases import is_dataset
from medlens.errors import InputError, MedlensError


@dataclass(frozen=True)
class ReportRequest:
    """The arguments of ``medlens report``; ``methods`` empty: the defaults that run on the model;
    ``limit`` reports on that many cases of a data set from ``index``, one folder each."""

    model: str
    input: str
    out: str
    index: int = 0
    split: str = "test"
    methods: Sequence[str] = ()
    target: int | str | None = None  # a class index or a class name (medlens.app.inputs.target_class)
    evaluation: str | None = None
    basis_data: str | None = None
    basis_labels: str | None = None  # a folder of scans as --basis-data: its labels CSV (as basis --labels)
    k: int = 5
    show_identifiers: bool = False
    recipe: RecipeOptions = field(default_factory=RecipeOptions)
    options: Mapping[str, Any] = field(default_factory=dict)
    limit: int | None = None
    batch_size: int | None = None
    memory_mb: float | None = None
    seed: int = 0
    quiet: bool = True
    text_column: str = "text"  # notes (a text model): medlens.app.report_note
    label_column: str = "label"
    multi_label: bool = False  # one sigmoid per finding (also the model file's meta["multilabel"])

    def validate(self) -> None:
        """Fail, in one line, on what can be told before any work."""
        from medlens.attribution.registry import get_method

        if self.k < 1:
            raise MedlensError(f"--k must be at least 1, got {self.k}")
        for m in self.methods:
            get_method(m)  # an unknown name fails before any work
        if self.evaluation is not None and not Path(self.evaluation).is_dir():
            raise MedlensError(f"evaluation folder {self.evaluation!r} does not exist")


@dataclass
class ReportResult:
    """The reports written: per case its index, its summary (``case.json``) and its page."""

    out: str
    cases: list[tuple[int, dict, Path]]


def report_case(request: ReportRequest | None = None, **kwargs: Any) -> ReportResult:
    """Write ``report.html`` and ``case.json`` for the case(s) of ``request`` into ``request.out``.
    Takes a :class:`ReportRequest` or its fields as keywords."""
    from medlens.app.case_report import DEFAULT_METHODS, CaseReportSettings, case_report
    from medlens.app.options import options_per_method
    from medlens.attribution.explain import check_runnable, runnable_methods
    from medlens.data.record_cases import beat_alignment_warnings
    from medlens.report.case import write_case_report

    request = request if request is not None else ReportRequest(**kwargs)
    request.validate()
    limit = 1 if request.limit is None else request.limit
    methods = list(request.methods or DEFAULT_METHODS)
    options = options_per_method(request.options, methods)
    model, meta = load_model_file(request.model, request.multi_label)
    request = replace(request, target=target_class(request.target, meta))  # a class by name too
    if request.basis_labels is not None and (request.basis_data is None or is_dataset(request.basis_data)
                                             or meta.get("tokenizer")):
        raise MedlensError("--basis-labels is for a folder of scans as --basis-data (a data set or notes file carries its own labels)")
    if meta.get("tokenizer"):
        from medlens.app.report_note import report_notes

        return report_notes(request, model, meta)
    method_note = None
    if request.methods:
        for m in methods:
            check_runnable(model, m, options.get(m))
    else:
        methods, method_note = runnable_methods(model, methods, options)
        options = {k: v for k, v in options.items() if k in methods}
    refuse_index(request.index, request.input)
    indices = list(range(request.index, request.index + limit))
    dataset = is_dataset(request.input)
    if len(indices) > 1 and not dataset:
        raise MedlensError("--limit above 1 needs an npz data set (or a bundled name) as --input")
    if dataset:
        source = model_cases(request.input, meta, split=request.split)
        cases = [source.case(i) for i in indices]
    else:
        scans = model_cases(request.input, meta, recipe=request.recipe, show_identifiers=request.show_identifiers,
                            memory_mb=request.memory_mb)
        cases = [scans.case(0)]
    basis_inputs, basis_labels, basis_folder = _basis_cases(request, meta, None if dataset else scans)
    settings = CaseReportSettings(
        meta=meta, methods=methods, method_options=options, evaluation=request.evaluation, basis_inputs=basis_inputs,
        basis_labels=basis_labels, basis_folder=basis_folder, k=request.k, show_identifiers=request.show_identifiers, seed=request.seed,
        batch_size=request.batch_size, memory_mb=request.memory_mb, model_name=Path(request.model).name,
    )
    results = []
    for i, case in zip(indices, cases):
        shown = case_input(request.input, case, method_note, show_identifiers=request.show_identifiers)
        if not dataset:  # a beat model's window of a record off its beat alignment, as explain warns
            shown = replace(shown, warnings=[*shown.warnings, *beat_alignment_warnings(meta, case)])
        content, summary = case_report(model, case.x, request.target, case=shown,
                                       settings=settings)
        results.append((i, content, summary))
    written = []
    with staged_folder(request.out) as out:
        for i, content, summary in results:
            folder = out if len(results) == 1 else out / f"case-{i}"
            write_case_report(content, folder / "report.html")
            write_json(folder / "case.json", summary)
            where = Path(request.out) / ("report.html" if len(results) == 1 else f"case-{i}/report.html")
            written.append((i, summary, where))
        rows = _identifier_rows(None if dataset else scans, basis_folder)
        if rows:
            write_csv(out / "identifiers.csv", rows)
    return ReportResult(request.out, written)


def _basis_cases(request: ReportRequest, meta: dict, query: Any) -> tuple[Any, Any, Any]:
    """The training cases of the similar-cases section (``--basis-data``): inputs, labels and, for
    a folder of scans read as ``medlens basis`` reads it, its :class:`~medlens.app.folder_basis.FolderBasis`
    (``query``: the opened input, whose scans name the query's patient); ``None`` each without it."""
    from medlens.app.folder_basis import FolderBasis
    from medlens.app.reference_cases import reference_sets

    if request.basis_data is None:
        return None, None, None
    train, _ = reference_sets(request.basis_data, meta, labels=request.basis_labels, recipe=request.recipe,
                              show_identifiers=request.show_identifiers, memory_mb=request.memory_mb)
    expected = meta.get("input_shape")
    if expected is not None and list(train.inputs.shape[1:]) != list(expected):
        raise InputError(f"basis data {_basis_words(request)} have cases of shape {tuple(train.inputs.shape[1:])}, "
                         f"the model takes {tuple(expected)}")
    folder = None if train.cases is None else FolderBasis(train, query, request.show_identifiers)
    return train.inputs, train.labels, folder


def _identifier_rows(scans: Any, folder: Any) -> list[dict[str, str]]:
    """identifiers.csv: the input's files and, with a folder as --basis-data, the folder's (``of``
    says which: both name their cases case-0000...)."""
    rows = [] if scans is None else scans.identifier_rows()
    if folder is None:
        return rows
    return [*({**r, "of": "--input"} for r in rows), *({**r, "of": "--basis-data"} for r in folder.reference.cases.identifier_rows())]


def _basis_words(request: ReportRequest) -> str:
    """--basis-data in a message: a data set by its name, a folder by its kind (its name may name a patient)."""
    from medlens.data.cases import data_words

    data = request.basis_data
    return repr(data) if is_dataset(data) or request.show_identifiers else data_words(data)


def case_input(input: str, case: Any, method_note: str | None = None, *, show_identifiers: bool = False) -> Any:
    """What the report shows of a case beside the model's input: the native scan, a description that
    names no one, the identifiers kept apart (DICOM PS3.15 basic profile; a UID or identifying file
    name), the notes on how it was read, the geometry that brings the maps back."""
    from medlens.app.case_report import CaseInput
    from medlens.app.pixel_privacy import pixel_privacy
    from medlens.data.formats.deid import is_uid_like, read_identity

    p = Path(input)
    identifiers: dict[str, str] = {}
    metadata = dict(case.metadata)
    is_file = case.record is not None and not is_dataset(input)  # a WFDB record is named without its .hea
    if is_file and getattr(case.record, "format", "") == "DICOM":  # PS3.15's basic profile, read from the header
        identity = read_identity(p)
        identifiers.update(identity.identifiers)
        metadata = dict(identity.metadata)
    elif is_file:  # other formats: what their reader kept apart (NIfTI descriptions, EDF patient fields, ...)
        identifiers.update(case.identifiers)
    kind = case.source.split(" ", 1)[0] if is_file else "case"
    if is_file and (is_uid_like(p.name) or is_uid_like(p.resolve().name)):
        identifiers["file name"] = p.name
        description = f"{kind} file (name withheld: it is a UID)"
    elif is_file and any(v and len(v) > 2 and v.lower() in p.name.lower() for v in _name_parts(identifiers)):
        identifiers["file name"] = p.name
        description = f"{kind} file (name withheld: it holds an identifier)"
    else:
        description = case.source
    native = None if case.native is None else case.native.numpy()
    shape = tuple(native.shape) if native is not None else tuple(case.x.shape[2:])
    description += f", {' x '.join(str(s) for s in shape)}"
    if metadata.get("Modality"):
        description = f"{metadata['Modality']} " + description
    notes = [f"Input read as: {case.note}."] if case.note else []
    notes += [method_note[0].upper() + method_note[1:] + "."] if method_note else []
    # the maps come back through the recipe's exact inverse, as explain writes attribution.npy
    geometry = case.prepared.geometry if native is not None and case.prepared is not None else None
    pixels = pixel_privacy(getattr(case.record, "metadata", {}) if is_file else {}, show_identifiers=show_identifiers)
    return CaseInput(native=native, description=description, label=case.label, spacing=case.spacing,
                     planes=getattr(case.record, "plane_names", None), affine=_volume_affine(case.record, native),
                     metadata=metadata, identifiers=identifiers, notes=notes,
                     window=dicom_window(metadata) or ct_window(case, native),
                     geometry=geometry, reading=case.reading, pixels_withheld=pixels.withhold,
                     warnings=[pixels.warning] if pixels.warning else [], **signal_window(case, show_identifiers=show_identifiers))


def _volume_affine(record: Any, native: Any) -> Any:
    """The record's affine when ``native`` is its volume as read (the grid the affine describes)."""
    shape = getattr(record, "spatial_shape", None)
    if native is None or native.ndim != 3 or shape is None or tuple(native.shape) != tuple(shape):
        return None
    return getattr(record, "affine", None)


def signal_window(case: Any, *, show_identifiers: bool = False) -> dict[str, Any]:
    """A record's window as the model saw it: the rate of its samples, the time of its first
    sample in the record, and the record's annotations (beats, events) inside it, at the model's
    sample positions, free text withheld (:func:`medlens.data.formats.annotation_text.shown_label`);
    ``{}`` for anything but a record cut by the recipe."""
    from medlens.data.formats.annotation_text import shown_label
    from medlens.report.viewer import Annotation

    geometry = getattr(case.prepared, "geometry", None)
    if geometry is None or geometry.kind != "signal" or not geometry.record_fs:
        return {}
    s0, s1 = geometry.span
    scale = float(geometry.model_fs) / float(geometry.record_fs)
    inside = [Annotation((a.sample - s0) * scale, shown_label(a.symbol, show_identifiers))
              for a in getattr(case.record, "annotations", ())
              if s0 <= a.sample < s1]
    return {"rate": float(geometry.model_fs), "start": s0 / float(geometry.record_fs), "annotations": inside}


def dicom_window(metadata: dict[str, str]) -> tuple[float, float] | None:
    """The file's own grey-level window (first WindowCenter / WindowWidth) as (low, high)."""
    try:
        centre = float(metadata["WindowCenter"].split("\\")[0])
        width = float(metadata["WindowWidth"].split("\\")[0])
    except (KeyError, ValueError):
        return None
    return (centre - width / 2, centre + width / 2) if width > 0 else None


def ct_window(case: Any, native: Any) -> tuple[float, float] | None:
    """For a CT without its own window (a NIfTI file): the recipe's first CT window, else soft
    tissue, as explain's overlay draws it (:func:`~medlens.data.hounsfield.display_range`)."""
    import torch

    from medlens.data.hounsfield import display_range

    if native is None or (case.reading or {}).get("kind") == "signal":
        return None
    shown = display_range(torch.as_tensor(native), ((case.recipe_summary or {}).get("recipe") or {}).get("windows") or ())
    return shown[0] if shown else None


def _name_parts(identifiers: dict[str, str]) -> list[str]:
    parts = []
    for key in ("PatientName", "PatientID", "AccessionNumber", "OtherPatientIDs", "PatientBirthDate"):
        parts.extend(v for v in identifiers.get(key, "").replace("^", " ").split() if v)
    return parts


