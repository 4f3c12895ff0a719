"""Labelled windows cut from signal records (WFDB, EDF): around beat annotations, or fixed windows.

* :func:`beat_windows`: one window per annotation whose symbol is mapped to a class
  (``{"N": "normal", "A": "atrial premature", "V": "ventricular"}``), from ``before`` seconds
  before the annotation to ``after`` seconds after it; windows running off the record, and
  symbols not in the map (rhythm changes, noise marks, unmapped beats), are counted and skipped.
* :func:`fixed_windows`: consecutive windows of ``length`` seconds every ``step`` seconds, all
  with the record's label.
* :func:`windows_from_folder`: either, over every record of a folder (``.hea`` WFDB records and
  ``.edf``/``.bdf`` files), labels per record from a mapping for fixed windows.

Every window is cut by :func:`medlens.data.recipe.prepare` with the recipe of the model
(:meth:`Windows.recipe`: the rate ``fs``, the length in samples, the leads, the normalisation),
the very code ``explain`` runs on a record: a record at another rate is resampled to the model's
``fs`` there, and a model trained on windows records ``fs`` through the recipe stored in its file.
:func:`beat_window` cuts the window of one annotation for explaining it, and
:func:`to_record_axis` brings a map over the window back onto the record's own samples for
drawing a strip in seconds.
"""

from __future__ import annotations

import math
import os
import pathlib
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence

import torch

from medlens.data.datasets.labelled import LabelledSet
from medlens.data.formats.signals import Annotation, Signal, load_signal, segment_records
from medlens.data.recipe import Recipe, prepare
from medlens.data.recipe.prepare import lead_indices, resample_grid
from medlens.errors import FileFormatError, InputError, MedlensError


def parse_annotation_labels(text: str | Mapping[str, str]) -> dict[str, str]:
    """``"N:normal,V:ventricular"`` (or a mapping) -> ``{"N": "normal", "V": "ventricular"}``.

    Several symbols may share a class (``"N:normal,L:normal,R:normal"``).
    """
    if isinstance(text, Mapping):
        out = {str(k): str(v) for k, v in text.items()}
    else:
        out = {}
        for part in str(text).split(","):
            if not part.strip():
                continue
            symbol, sep, name = part.partition(":")
            if not sep or not symbol.strip() or not name.strip():
                raise InputError(f"annotation labels are SYMBOL:CLASS pairs separated by commas, got {part.strip()!r}")
            out[symbol.strip()] = name.strip()
    if not out:
        raise InputError("no annotation labels given (for example N:normal,V:ventricular)")
    return out


def parse_leads(leads: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """``--leads``: lead names separated by commas, or by semicolons when a name holds a comma
    (WFDB's ``binformats`` names its leads ``"sig 0, fmt 8"``); ``None`` when none are given."""
    if leads is None:
        return None
    if isinstance(leads, str):
        leads = leads.split(";" if ";" in leads else ",")
    names = tuple(v.strip() for v in leads if v.strip())
    return names or None


def resample_signal(signal: Signal, fs: float) -> Signal:
    """The record at rate ``fs`` (linear interpolation up, area averaging down); annotations moved."""
    if not fs > 0:
        raise InputError(f"sampling rate must be positive, got {fs}")
    if math.isclose(fs, signal.fs):
        return signal
    n = int(signal.values.shape[-1])
    m = max(1, int(round(n * fs / signal.fs)))
    values = resample_grid(signal.values.float(), (m,))
    ratio = fs / signal.fs
    annotations = tuple(replace(a, sample=min(m - 1, int(round(a.sample * ratio)))) for a in signal.annotations)
    metadata = {**signal.metadata, "ResampledFrom": f"{signal.fs:g}"}
    return replace(signal, values=values, fs=float(fs), annotations=annotations, metadata=metadata)


@dataclass(frozen=True)
class Windows:
    """Labelled windows cut from one or more records.

    Attributes
    ----------
    inputs : torch.Tensor
        float32 ``(N, C, L)`` at :attr:`fs`.
    labels : torch.Tensor
        int64 ``(N,)`` into :attr:`class_names`.
    class_names : tuple of str
    fs : float
        Sampling rate of the windows (Hz): the model's rate.
    before, after : float
        Seconds before and after the annotation (beats); for fixed windows ``before`` is 0 and
        ``after`` the window length.
    leads : tuple of str
        The leads, by name, in channel order.
    normalize : str
        The recipe normalisation applied to each window (``"none"``: physical units).
    records : tuple of str
        Record of each window.
    samples : torch.Tensor
        int64 ``(N,)``: the annotation (or window start) of each window on its record's own
        sample axis.
    times : torch.Tensor
        float64 ``(N,)``: the same in seconds.
    symbols : tuple of str
        Annotation symbol of each window (the record label for fixed windows).
    skipped : dict of str to int
        What was left out and why (``"unmapped symbol 'Q'"``, ``"runs off the record"``).
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    fs: float
    before: float
    after: float
    leads: tuple[str, ...]
    normalize: str
    records: tuple[str, ...]
    samples: torch.Tensor
    times: torch.Tensor
    symbols: tuple[str, ...]
    skipped: dict[str, int] = field(default_factory=dict)
    units: tuple[str, ...] = ()  # the physical unit of each lead (the first record's; others converted)

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:
        counts = {n: int((self.labels == k).sum()) for k, n in enumerate(self.class_names)}
        return (f"Windows(n={len(self)}, shape={tuple(self.inputs.shape[1:])}, fs={self.fs:g}, classes={counts}, "
                f"skipped={self.skipped})")

    def recipe(self) -> Recipe:
        """The recipe a model trained on these windows stores: its rate, length, leads, normalisation."""
        return Recipe(normalize=self.normalize, size=(int(self.inputs.shape[-1]),), fs=self.fs,
                      leads=self.leads or None, units=self.units if any(self.units) else None)

    def meta(self) -> dict[str, object]:
        """Plain data to store with a model (``meta["windows"]``): how windows are cut, and ``fs``."""
        return {"fs": self.fs, "before": self.before, "after": self.after, "leads": list(self.leads),
                "normalize": self.normalize, "class_names": list(self.class_names)}

    def select(self, rows: torch.Tensor | Sequence[int] | Sequence[bool]) -> "Windows":
        """The windows at ``rows`` (indices or a boolean mask)."""
        idx = torch.as_tensor(rows)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().flatten()
        keep = idx.tolist()
        return replace(self, inputs=self.inputs[idx], labels=self.labels[idx], samples=self.samples[idx],
                       times=self.times[idx], records=tuple(self.records[i] for i in keep),
                       symbols=tuple(self.symbols[i] for i in keep))

    def between(self, start: float | None = None, stop: float | None = None) -> "Windows":
        """Windows whose annotation lies in ``[start, stop)`` seconds of their record."""
        t = self.times
        mask = torch.ones(len(self), dtype=torch.bool)
        if start is not None:
            mask &= t >= start
        if stop is not None:
            mask &= t < stop
        return self.select(mask)

    def labelled(self, name: str = "records") -> LabelledSet:
        """A :class:`LabelledSet` ``(N, C, L)`` for the training loop."""
        return LabelledSet(self.inputs, self.labels, None, name, self.class_names)


def _leads(signal: Signal, leads: Sequence[str] | None) -> tuple[str, ...]:
    if leads is None:
        return tuple(signal.channels)
    return tuple(signal.channels[i] for i in lead_indices(signal.channels, leads))


def _window_recipe(fs: float, length: int, leads: tuple[str, ...], normalize: str, start: float,
                   units: tuple[str, ...] = ()) -> Recipe:
    return Recipe(normalize=normalize, size=(length,), fs=fs, leads=leads or None, start=start,
                  units=units if any(units) else None)


def _lead_units(signal: Signal, lead_index: Sequence[int], units: Sequence[str] | None) -> tuple[str, ...]:
    """The units windows are cut in: ``units`` when given (the first record's), else the record's own."""
    if units is not None:
        return tuple(units)
    return tuple(signal.units[i] if i < len(signal.units) else "" for i in lead_index)


def beat_window(signal: Signal, sample: int, recipe: Recipe, before: float) -> tuple[torch.Tensor, tuple[int, int]]:
    """The model input ``(1, C, L)`` of the window around ``sample`` (on the record's own axis).

    ``recipe`` is the model's (its ``fs``, ``size``, leads, normalisation); the window starts
    ``before`` seconds before the annotation and runs ``size`` samples at the model's rate,
    resampled from the record's rate by :func:`medlens.data.recipe.prepare`. Returns the input
    and the window's span ``(start, stop)`` in the record's samples.
    """
    start = sample / signal.fs - before
    if start < 0:
        raise InputError(f"the window of the annotation at {sample / signal.fs:.3f} s starts before the record")
    prepared = prepare(signal, recipe.replace(start=start))
    return prepared.x, tuple(int(v) for v in prepared.geometry.span)  # type: ignore[attr-defined]


def to_record_axis(values: torch.Tensor, span: tuple[int, int], n_samples: int) -> torch.Tensor:
    """A map over a window ``(C, L)`` at the model's rate -> ``(C, n_samples)`` on the record's axis.

    Resampled to the span's length and placed at ``span``; zero elsewhere (where the model did
    not look), ready for :func:`medlens.viz.signals.signal_attribution_figure`.
    """
    values = values.detach().float().cpu()
    if values.ndim == 1:
        values = values[None]
    s0, s1 = span
    out = torch.zeros(values.shape[0], n_samples)
    out[:, s0:s1] = resample_grid(values, (s1 - s0,))
    return out


def beat_windows(
    signal: Signal,
    labels: Mapping[str, str] | str,
    *,
    before: float = 0.25,
    after: float = 0.45,
    fs: float | None = None,
    leads: Sequence[str] | None = None,
    normalize: str = "none",
    class_names: Sequence[str] | None = None,
    units: Sequence[str] | None = None,
) -> Windows:
    """One labelled window per mapped annotation of ``signal``.

    Parameters
    ----------
    signal : Signal
        A record with annotations (:func:`medlens.data.formats.signals.load_signal`).
    labels : mapping or str
        Annotation symbol -> class name (``"N:normal,A:atrial premature"``). Other symbols are
        skipped and counted.
    before, after : float
        Seconds before and after each annotation.
    fs : float, optional
        Rate of the windows (the model's); default the record's. Windows are
        ``round((before + after) * fs)`` samples.
    leads : sequence of str, optional
        Leads by name; default all.
    normalize : {"none", "zscore", "minmax"}
        Recipe normalisation of each window (``"zscore"``: per lead and window).
    class_names : sequence of str, optional
        Class order; default the mapped names in order of first appearance in ``labels``.
    units : sequence of str, optional
        The unit each lead is cut in (another record's, so that a folder's windows agree); default
        the record's own. A lead in another unit of the same kind is converted (uV -> mV).
    """
    mapping = parse_annotation_labels(labels)
    if not (0 <= before < math.inf and 0 < after < math.inf):
        raise InputError(f"before must be >= 0 and after > 0 seconds, both finite, got before={before}, after={after}")
    names = tuple(class_names) if class_names is not None else tuple(dict.fromkeys(mapping.values()))
    unknown = sorted(set(mapping.values()) - set(names))
    if unknown:
        raise InputError(f"class {unknown[0]!r} of the annotation labels is not among the class names {', '.join(names)}")
    fs = float(fs or signal.fs)
    length = _window_samples(before + after, fs)
    lead_names = _leads(signal, leads)
    lead_index = lead_indices(signal.channels, lead_names)
    n = int(signal.values.shape[-1])
    span_native = int(round(length * signal.fs / fs))
    lead_units = _lead_units(signal, lead_index, units)
    base = _window_recipe(fs, length, lead_names, normalize, 0.0, lead_units)
    index = {name: k for k, name in enumerate(names)}
    xs, ys, samples, symbols = [], [], [], []
    skipped: dict[str, int] = {}
    for ann in signal.annotations:
        if ann.symbol not in mapping:
            key = f"unmapped symbol {ann.symbol!r}"
            skipped[key] = skipped.get(key, 0) + 1
            continue
        s0 = int(round((ann.sample / signal.fs - before) * signal.fs))
        if s0 < 0 or s0 + span_native > n:
            skipped["runs off the record"] = skipped.get("runs off the record", 0) + 1
            continue
        if bool(torch.isnan(signal.values[lead_index, s0:s0 + span_native]).any()):
            skipped["missing samples"] = skipped.get("missing samples", 0) + 1
            continue
        x, _ = beat_window(signal, ann.sample, base, before)
        xs.append(x[0])
        ys.append(index[mapping[ann.symbol]])
        samples.append(ann.sample)
        symbols.append(ann.symbol)
    if not xs:
        record = signal.identifiers.get('Record', signal.source) or 'the record'
        if not signal.annotations:
            raise InputError(f"no annotation in {record}: beat windows are cut around annotations (a WFDB record's "
                             ".atr file beside its header, an EDF+ file's annotations)")
        raise InputError(
            f"no annotation of {record} has a mapped symbol ({', '.join(sorted(mapping))}) with a whole window inside "
            f"the record (its annotations: {_symbol_counts(signal.annotations)})"
        )
    samples_t = torch.tensor(samples, dtype=torch.long)
    name = signal.identifiers.get("Record") or pathlib.Path(signal.source).stem or "record"
    return Windows(
        torch.stack(xs).float(), torch.tensor(ys, dtype=torch.long), names, fs, float(before), float(after),
        lead_names, normalize, (name,) * len(xs), samples_t, samples_t.double() / signal.fs, tuple(symbols), skipped,
        lead_units,
    )


def _symbol_counts(annotations: Sequence[Annotation], most: int = 8) -> str:
    """``"N 2239, A 33, + 1"``: the most frequent annotation symbols with their counts."""
    counts: dict[str, int] = {}
    for ann in annotations:
        counts[ann.symbol] = counts.get(ann.symbol, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])
    return ", ".join(f"{sym!r} {n}" for sym, n in top[:most]) + (", ..." if len(top) > most else "")


def _window_samples(seconds: float, fs: float) -> int:
    """The samples of a window of ``seconds`` at ``fs``: at least two, and a whole number (1e308 s
    has none)."""
    if not seconds * fs < 2**31:
        raise InputError(f"a window of {seconds:g} s at {fs:g} Hz is longer than any record")
    samples = int(round(seconds * fs))
    if samples < 2:
        raise InputError(f"a window of {seconds:g} s at {fs:g} Hz has fewer than two samples")
    return samples


def fixed_windows(
    signal: Signal,
    label: str,
    *,
    length: float,
    step: float | None = None,
    fs: float | None = None,
    leads: Sequence[str] | None = None,
    normalize: str = "none",
    class_names: Sequence[str] | None = None,
    units: Sequence[str] | None = None,
) -> Windows:
    """Consecutive windows of ``length`` seconds every ``step`` seconds (default ``length``), all labelled ``label``."""
    names = tuple(class_names) if class_names is not None else (label,)
    if label not in names:
        raise InputError(f"label {label!r} is not among the class names {', '.join(names)}")
    if not length > 0 or (step is not None and not step > 0):
        raise InputError(f"window length and step must be positive seconds, got {length}, {step}")
    step = float(step or length)
    fs = float(fs or signal.fs)
    size = _window_samples(length, fs)
    lead_names = _leads(signal, leads)
    duration = signal.values.shape[-1] / signal.fs
    lead_index = lead_indices(signal.channels, lead_names)
    lead_units = _lead_units(signal, lead_index, units)
    span_native = int(round(size * signal.fs / fs))
    xs, starts = [], []
    skipped: dict[str, int] = {}
    t = 0.0
    while t + length <= duration + 1e-9:
        s0 = int(round(t * signal.fs))
        if bool(torch.isnan(signal.values[lead_index, s0:s0 + span_native]).any()):
            skipped["missing samples"] = skipped.get("missing samples", 0) + 1
            t += step
            continue
        prepared = prepare(signal, _window_recipe(fs, size, lead_names, normalize, t, lead_units))
        xs.append(prepared.x[0])
        starts.append(int(round(t * signal.fs)))
        t += step
    if not xs:
        if skipped:
            raise InputError(f"every window of {length:g} s of the record holds samples it marks missing")
        raise InputError(f"the record ({duration:g} s) is shorter than one window of {length:g} s")
    samples_t = torch.tensor(starts, dtype=torch.long)
    name = signal.identifiers.get("Record") or pathlib.Path(signal.source).stem or "record"
    return Windows(
        torch.stack(xs).float(), torch.full((len(xs),), names.index(label), dtype=torch.long), names, fs, 0.0,
        float(length), lead_names, normalize, (name,) * len(xs), samples_t, samples_t.double() / signal.fs,
        (label,) * len(xs), skipped, lead_units,
    )


def record_paths(folder: str | os.PathLike) -> list[pathlib.Path]:
    """The records of a folder in sorted order: WFDB headers (``.hea``) and ``.edf``/``.bdf`` files;
    the segments and layout header of a multi-segment record beside its master header are not
    records of their own."""
    root = pathlib.Path(os.fspath(folder)).expanduser()
    if root.is_file() or root.with_suffix(".hea").is_file():
        return [root]
    if not root.is_dir():
        raise FileFormatError(f"record folder not found: {root}")
    found = sorted(p for p in root.rglob("*") if p.suffix.lower() in (".hea", ".edf", ".bdf") and p.is_file())
    parts = segment_records([p for p in found if p.suffix.lower() == ".hea"])
    found = [p for p in found if p not in parts]  # a multi-segment record's segments are read through it
    if not found:
        raise FileFormatError(f"{root} holds no signal records (.hea WFDB headers, .edf or .bdf files)")
    return found


def concat(parts: Sequence[Windows]) -> Windows:
    """One :class:`Windows` from several with the same rate, length, leads and classes."""
    first = parts[0]
    for p in parts[1:]:
        if (p.fs, p.inputs.shape[1:], p.class_names) != (first.fs, first.inputs.shape[1:], first.class_names):
            raise InputError("records give windows of different rates, shapes or classes; give fs, leads and class names")
    skipped: dict[str, int] = {}
    for p in parts:
        for k, v in p.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
    return replace(
        first, inputs=torch.cat([p.inputs for p in parts]), labels=torch.cat([p.labels for p in parts]),
        records=sum((p.records for p in parts), ()), samples=torch.cat([p.samples for p in parts]),
        times=torch.cat([p.times for p in parts]), symbols=sum((p.symbols for p in parts), ()), skipped=skipped,
    )


#: How ``skipped`` counts the records left out because they could not be read or cut.
_UNREADABLE = "records that could not be read or cut"


def windows_from_folder(
    folder: str | os.PathLike,
    *,
    windows: str = "beats",
    annotation_labels: Mapping[str, str] | str | None = None,
    record_labels: Mapping[str, str] | None = None,
    before: float = 0.25,
    after: float = 0.45,
    length: float | None = None,
    step: float | None = None,
    fs: float | None = None,
    leads: Sequence[str] | None = None,
    normalize: str = "none",
    class_names: Sequence[str] | None = None,
    units: Sequence[str] | None = None,
    skip_unreadable: bool = False,
) -> Windows:
    """Windows from every record of a folder (or one record).

    ``windows="beats"`` cuts around annotations mapped by ``annotation_labels``;
    ``windows="fixed"`` cuts ``length``-second windows labelled by ``record_labels`` (record name
    -> class; records without a label are skipped and counted). ``fs`` defaults to the first
    record's rate; other records are resampled to it, and their leads converted to ``units`` (a
    model's: one per lead), by default the first record's. A record that cannot be read or cut
    (a missing signal file, no lead the model takes) refuses the folder, or with ``skip_unreadable``
    (predicting: the other records still count) is left out and counted in ``skipped``.
    """
    paths = record_paths(folder)
    parts: list[Windows] = []
    skipped: dict[str, int] = {}
    first_reason = ""  # why the first record without a window gave none
    if windows == "beats":
        if annotation_labels is None:
            raise InputError("beat windows need annotation labels (for example N:normal,V:ventricular)")
        mapping = parse_annotation_labels(annotation_labels)
        names = tuple(class_names) if class_names is not None else tuple(dict.fromkeys(mapping.values()))
    elif windows == "fixed":
        if record_labels is None or length is None:
            raise InputError("fixed windows need a window length and a label per record")
        names = tuple(class_names) if class_names is not None else tuple(sorted(set(record_labels.values())))
    else:
        raise InputError(f"windows must be 'beats' or 'fixed', got {windows!r}")
    for path in paths:
        try:
            signal = load_signal(path)
            rate = fs or (parts[0].fs if parts else signal.fs)
            lead_units = units or (parts[0].units if parts else None)  # later records converted to the first one's units
            if windows == "beats":
                try:
                    parts.append(beat_windows(signal, mapping, before=before, after=after, fs=rate, leads=leads,
                                              normalize=normalize, class_names=names, units=lead_units))
                except InputError as err:
                    if "no annotation" not in str(err):
                        raise
                    first_reason = first_reason or str(err)
                    skipped["records without mapped annotations"] = skipped.get("records without mapped annotations", 0) + 1
            else:
                label = record_labels.get(path.stem) or record_labels.get(path.name)  # type: ignore[union-attr]
                if label is None:
                    skipped["records without a label"] = skipped.get("records without a label", 0) + 1
                    continue
                parts.append(fixed_windows(signal, label, length=length, step=step, fs=rate, leads=leads,  # type: ignore[arg-type]
                                           normalize=normalize, class_names=names, units=lead_units))
        except MedlensError as err:  # one record that cannot be read or cut: left out and counted, where allowed
            if not skip_unreadable:
                raise
            first_reason = first_reason or str(err)
            key = next((k for k in skipped if k.startswith(_UNREADABLE)), f"{_UNREADABLE}, the first: {err}")
            skipped[key] = skipped.get(key, 0) + 1
    if not parts:
        counts = ", ".join(f"{k}: {v}" for k, v in skipped.items())
        reason = f"; {first_reason}" if first_reason and first_reason not in counts else ""
        raise InputError(f"no record in {folder} gave a labelled window ({counts}){reason}")
    out = concat(parts)
    for k, v in skipped.items():
        out.skipped[k] = out.skipped.get(k, 0) + v
    return out
