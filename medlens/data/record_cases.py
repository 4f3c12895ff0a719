"""The cases of signal records for a model trained on windows: one case per window.

A model trained by ``medlens train --windows beats|fixed`` stores how its windows are cut in
``meta["windows"]`` (:func:`window_settings` describes the keys): the rate ``fs``, the seconds
before and after an annotation (or the window length and step), the leads, the normalisation and,
for beats, the map from annotation symbols to classes. :class:`RecordCases` cuts the same windows
from every record of a folder (or one record) with :func:`medlens.data.records.windows_from_folder`,
so a record at another rate is resampled to the model's; beat windows take their labels from the
annotations, fixed windows from ``record_labels`` (record name -> class) when given.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import torch

from medlens.data.cases import Case, CaseBatch, Cases, pseudonym
from medlens.data.records import Windows, parse_leads, windows_from_folder
from medlens.errors import InputError

__all__ = ["RecordCases", "WINDOW_KINDS", "beat_alignment", "beat_alignment_warnings", "cut_windows", "model_windows", "skipped_statement",
           "window_settings"]

WINDOW_KINDS = ("beats", "fixed")


def window_settings(windows: Windows, kind: str, *, annotation_labels: Mapping[str, str] | None = None,
                    step: float | None = None) -> dict[str, Any]:
    """What a model file stores in ``meta["windows"]``: :meth:`Windows.meta` plus the kind of
    windows, the symbol map (beats) and the step (fixed windows)."""
    return {**windows.meta(), "kind": kind, "annotation_labels": dict(annotation_labels or {}),
            "step": None if step is None else float(step)}


def model_windows(meta: Mapping[str, Any], data: str | os.PathLike | None = None,
                  leads: str | Sequence[str] | None = None) -> dict[str, Any] | None:
    """The window settings of a model trained on signal windows (``meta["windows"]``, with the
    model's class names), or ``None`` for any other model, or when ``data`` is a data set (an
    npz file or a bundled name: already windows). ``leads`` (``--leads``: ``"I,II"`` or names)
    replaces the leads the windows are cut from, as many as the model takes."""
    from medlens.data.cases import is_dataset

    if not meta.get("windows") or (data is not None and is_dataset(os.fspath(data))):
        return None
    settings = dict(meta["windows"])
    if leads:
        given = list(parse_leads(leads) or ())
        want = list(settings.get("leads") or ())
        if want and len(given) != len(want):
            raise InputError(f"--leads names {len(given)} lead(s) but the model takes {len(want)} ({', '.join(want)})")
        settings["leads"] = given
    settings.setdefault("class_names", list(meta.get("class_names") or ()))
    # each lead's unit (stored with the recipe): a record in uV is converted for a model trained in mV
    settings.setdefault("units", list((meta.get("recipe") or {}).get("units") or ()))
    return settings


def cut_windows(data: str | os.PathLike, settings: Mapping[str, Any], *,
                record_labels: Mapping[str, str] | None = None) -> Windows:
    """The windows ``settings`` (a model's ``meta["windows"]``) describe, cut from ``data``.

    Fixed windows without ``record_labels`` are cut with a stand-in label (the first class); the
    caller knows they are unlabelled.
    """
    kind = settings.get("kind", "beats")
    names = tuple(settings["class_names"])
    common = dict(fs=float(settings["fs"]), leads=settings.get("leads") or None, units=settings.get("units") or None,
                  normalize=settings.get("normalize", "none"), class_names=names, skip_unreadable=True)
    if kind == "beats":
        return windows_from_folder(data, windows="beats", annotation_labels=settings.get("annotation_labels") or None,
                                   before=float(settings["before"]), after=float(settings["after"]), **common)
    if kind == "fixed":
        from medlens.data.records import record_paths

        labels = dict(record_labels) if record_labels else {p.stem: names[0] for p in record_paths(data)}
        return windows_from_folder(data, windows="fixed", record_labels=labels, length=float(settings["after"]),
                                   step=settings.get("step"), **common)
    raise InputError(f"the model's windows are of an unknown kind {kind!r} (known: {', '.join(WINDOW_KINDS)})")


#: The WFDB annotation codes that mark a beat (PhysioNet's "beat annotation codes"): a window cut
#: before one of these is cut before a *beat*; before any other annotation (an EEG's T0/T1/T2, an
#: EDF+ event text) it is cut before an *event*.
WFDB_BEAT_SYMBOLS = frozenset("NLRBAaJSVrFejnE/fQ?")


def annotation_noun(symbols: Sequence[str]) -> str:
    """``"beat"`` when every one of ``symbols`` is a WFDB beat code, ``"event"`` otherwise."""
    return "beat" if symbols and all(s in WFDB_BEAT_SYMBOLS for s in symbols) else "event"


def beat_alignment(settings: Mapping[str, Any] | None, record: Any, start: float) -> str | None:
    """Why a window of a beat model's record may be one it never saw: its windows start ``before``
    seconds ahead of a mapped annotation, and the window from ``start`` does not (``predictions.csv``
    names each beat by its own time; copied into ``--start`` it shifts the window by ``before``).
    The sentence gives the start of the nearest mapped beat's window; ``None`` when aligned, or for
    other models and records without annotations."""
    if not settings or settings.get("kind", "beats") != "beats" or not getattr(record, "annotations", None):
        return None
    mapping, before, fs = settings.get("annotation_labels") or {}, float(settings["before"]), float(record.fs)
    beats = [a for a in record.annotations if a.symbol in mapping]
    if not beats:
        return None
    nearest = min(beats, key=lambda a: abs(a.sample / fs - before - start))
    at = nearest.sample / fs
    if abs(at - before - start) <= 1.0 / float(settings["fs"]):
        return None
    noun = annotation_noun(sorted(mapping))
    return (f"The model's windows start {before:g} s before {'an' if noun == 'event' else 'a'} {noun}; this one starts "
            f"at {start:.3f} s, and the nearest {nearest.symbol!r} {noun} is at {at:.3f} s: --start {at - before:.3f} "
            f"gives that {noun}'s window as the model saw its {noun}s (predictions.csv names each {noun} by its own time).")


def beat_alignment_warnings(meta: Mapping[str, Any], case: Any) -> list[dict[str, str]]:
    """The ``beat_alignment`` warning (:func:`beat_alignment`) of ``case``, a window of a record
    read through the recipe of a model with metadata ``meta``, as explain and report list it; ``[]``
    when aligned or not a beat model's record."""
    recipe = getattr(getattr(case, "prepared", None), "recipe", None)
    text = beat_alignment(model_windows(meta), getattr(case, "record", None), float(getattr(recipe, "start", 0.0) or 0.0))
    return [{"code": "beat_alignment", "message": text}] if text else []


def skipped_statement(skipped: Mapping[str, int]) -> str:
    """What cutting the windows left out, as one sentence (``""`` when nothing): predict's note, so
    a stretch of missing samples does not silently cost its beats."""
    if not skipped:
        return ""
    return f"left out when cutting the windows: {'; '.join(f'{n} ({why})' for why, n in skipped.items())}"


class RecordCases(Cases):
    """The windows of the records of ``data`` as the model cuts them (held in memory)."""

    is_dataset = False
    has_masks = False
    has_markers = False

    def __init__(self, data: str | os.PathLike, settings: Mapping[str, Any],
                 record_labels: Mapping[str, str] | None = None, *, show_identifiers: bool = False) -> None:
        """Windows are named ``case-0000@12.400s`` (the record by its position, the window's start)
        and the folder ``N records``, unless ``show_identifiers``: a record's name is its file name."""
        self.data = os.fspath(data)
        self.windows = cut_windows(self.data, settings, record_labels=record_labels)
        self.class_names = tuple(settings["class_names"])
        labelled = settings.get("kind", "beats") == "beats" or bool(record_labels)
        self.has_labels = labelled
        self.labels: list[int | None] = [int(v) if labelled else None for v in self.windows.labels]
        w = self.windows
        self.records = list(dict.fromkeys(w.records))  # each record once, in the windows' order
        ids = {r: r if show_identifiers else pseudonym(k) for k, r in enumerate(self.records)}
        self.record_ids = [ids[r] for r in self.records]
        self.names = [f"{ids[record]}@{float(t):.3f}s" for record, t in zip(w.records, w.times)]
        self.title = ((os.path.basename(self.data.rstrip("/")) or self.data) if show_identifiers
                      else f"{len(self.records)} record{'' if len(self.records) == 1 else 's'}")
        self.skipped = skipped_statement(w.skipped)

    def identifier_rows(self) -> list[dict[str, str]]:
        """One row per record for ``identifiers.csv``: ``case`` (the id window names start with)
        and ``record`` (its name)."""
        return [{"case": case, "record": record} for case, record in zip(self.record_ids, self.records)]

    def load(self, indices: Sequence[int]) -> CaseBatch:
        indices = [int(i) for i in indices]
        x = self.windows.inputs[torch.as_tensor(indices, dtype=torch.long)]
        return CaseBatch(x, [self.labels[i] for i in indices], None, indices, [self.names[i] for i in indices])

    def case(self, index: int) -> Case:
        if not 0 <= index < len(self):
            raise InputError(f"index {index} is out of range: {self.title} has {len(self)} windows (0..{len(self) - 1})")
        return Case(self.windows.inputs[index : index + 1], self.labels[index], f"window {self.names[index]}",
                    name=self.names[index], path=self.data)
