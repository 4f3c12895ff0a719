"""What ``medlens predict`` reads: one picklable description per kind of data, and its opener.

A :class:`PredictSpec` says which kind of cases a model's data holds, decided by the model file:

``notes``
    a text model (``meta["tokenizer"]``): a CSV / TSV / JSON Lines file of notes, or a ``.txt``
    note (:class:`medlens.data.notes_cases.NoteCases`);
``records``
    a model trained on signal windows (``meta["windows"]``): a WFDB/EDF record or a folder of them
    (:class:`medlens.data.record_cases.RecordCases`);
``cases``
    anything else: an npz or bundled data set, a scan or a folder of scans with a labels file,
    opened by the audit's source (:func:`medlens.audit.sources.open_source`, the case workflow).

:func:`open_predict_source` is what every engine worker calls to open it.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medlens.audit.run import labels_key, path_key
from medlens.audit.sources import SourceSpec, open_source
from medlens.data.cases import Cases, is_dataset
from medlens.data.notes_cases import NoteCases, NoteColumns
from medlens.data.record_cases import RecordCases, model_windows
from medlens.errors import FileFormatError, InputError

__all__ = ["PredictSpec", "open_predict_source", "predict_spec", "read_record_labels", "window_labels"]


@dataclass(frozen=True)
class PredictSpec:
    """A picklable description of the data to predict on (see the module's kinds)."""

    kind: str
    data: str
    class_names: tuple[str, ...]
    cases: SourceSpec | None = None
    tokenizer: str | None = None
    columns: NoteColumns = field(default_factory=NoteColumns)
    windows: dict[str, Any] | None = None
    record_labels: dict[str, str] | None = None
    show_identifiers: bool = False  # cases named by their files' names, records', the notes file's ids

    def describe(self) -> dict[str, Any]:
        """Plain data naming the input, stored with the predictions and checked on resume: paths
        as digests (:func:`medlens.audit.run.path_key`), since a folder or file name may name a patient."""
        out: dict[str, Any] = {"kind": self.kind, "data": path_key(self.data),
                               "named_by": "path" if self.show_identifiers else "id"}
        if self.cases is not None:
            out.update(split=self.cases.split, labels=path_key(self.cases.labels) if self.cases.labels else None,
                       recipe=None if self.cases.is_dataset else self.cases.recipe_object().to_dict())
        if self.kind == "notes":
            out["columns"] = [self.columns.text, self.columns.label, self.columns.case]
        if self.record_labels is not None:
            out["record_labels"] = labels_key(self.record_labels)
        return out


def open_predict_source(spec: PredictSpec) -> Cases:
    """The cases ``spec`` describes (each engine worker opens them itself)."""
    if spec.kind == "notes":
        return NoteCases(spec.data, spec.tokenizer or "", spec.class_names, spec.columns,
                         show_identifiers=spec.show_identifiers)
    if spec.kind == "records":
        return RecordCases(spec.data, spec.windows or {}, spec.record_labels, show_identifiers=spec.show_identifiers)
    return open_source(spec.cases)  # type: ignore[arg-type]


def read_record_labels(path: str | os.PathLike) -> dict[str, str]:
    """``record,label`` rows of a CSV (``case`` may stand for ``record``) -> ``{record: label}``."""
    p = Path(os.fspath(path))
    if not p.is_file():
        raise FileFormatError(f"labels file not found: {p}")
    with open(p, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh)
        header = [h.strip().lower() for h in reader.fieldnames or ()]
        key = "record" if "record" in header else "case" if "case" in header else None
        if key is None or "label" not in header:
            raise FileFormatError(f"{p} needs columns record,label (it has {', '.join(header) or 'none'})")
        out = {}
        for row in reader:
            row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
            if row.get(key) and row.get("label"):
                out[Path(row[key]).stem if Path(row[key]).suffix in (".hea", ".edf", ".bdf") else row[key]] = row["label"]
    if not out:
        raise InputError(f"{p} labels no record")
    return out


def window_labels(labels: str | None, settings: dict[str, Any]) -> dict[str, str] | None:
    """The record labels of ``--labels`` for a model's windows (``settings``): ``{record: label}``
    for fixed windows; ``None`` without the option; refused for beats, labelled by their annotations."""
    record_labels = read_record_labels(labels) if labels else None
    if record_labels and settings.get("kind", "beats") == "beats":
        raise InputError("--labels is for fixed windows: beat windows take their labels from the annotations")
    return record_labels


def predict_spec(data: str, meta: dict[str, Any], *, split: str = "test", labels: str | None = None,
                 recipe: Any = None, columns: NoteColumns = NoteColumns(), show_identifiers: bool = False,
                 leads: str | tuple[str, ...] | None = None) -> PredictSpec:
    """The :class:`PredictSpec` of ``data`` for a model with metadata ``meta``; ``recipe`` is the
    resolved recipe of scans (:func:`medlens.app.inputs.resolve_recipe`), ``leads`` the leads
    (``--leads``) a records model's windows are cut from."""
    names = tuple(meta.get("class_names") or ())
    if meta.get("tokenizer"):
        if labels is not None:
            raise InputError("--labels is for scans and records: a notes file carries its labels in a column")
        return PredictSpec("notes", data, names, tokenizer=meta["tokenizer"], columns=columns,
                           show_identifiers=show_identifiers)
    settings = model_windows(meta, leads=leads)
    if settings is not None:
        return PredictSpec("records", data, names, windows=settings, record_labels=window_labels(labels, settings),
                           show_identifiers=show_identifiers)
    shape = meta.get("input_shape")
    source = SourceSpec(data, split, None if shape is None else tuple(shape),
                        None if is_dataset(data) or recipe is None else recipe.to_dict(), labels, names,
                        show_identifiers=show_identifiers)
    return PredictSpec("cases", data, names, cases=source, show_identifiers=show_identifiers)
