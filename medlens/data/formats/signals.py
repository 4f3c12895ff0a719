"""Physiological signals: WFDB records (PhysioNet) and EDF / EDF+ / BDF files, in physical units.

:func:`load_signal` reads either and returns a :class:`Signal`: ``values`` ``(C, L)`` float32 in
physical units (mV, uV, ...), the sampling rate, the channel names and the annotations (WFDB beat
labels from the ``.atr`` file, EDF+ annotations). ``wfdb`` and ``pyedflib`` are imported inside
the functions that need them.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
import torch

from medlens.data.formats.common import PathLike, _one_line, one_line_errors, silenced_stdout
from medlens.data.formats.edf_header import ascii_header, range_fault
from medlens.data.formats.edf_tal import is_annotation_label, tal_annotations
from medlens.data.formats.limits import check_decoded_size
from medlens.errors import FileFormatError, InputError

#: Suffixes of the files a WFDB record is made of (``.hea`` names the record).
WFDB_SUFFIXES = (".hea", ".dat", ".atr")
#: First bytes of an EDF/EDF+ file and of a BDF file.
EDF_MAGIC = b"0       "
BDF_MAGIC = b"\xffBIOSEMI"


@dataclass(frozen=True)
class Annotation:
    """One annotation of a signal.

    Attributes
    ----------
    sample : int
        Index on the signal's time axis (``time = sample / fs`` seconds from the start).
    symbol : str
        The label: a WFDB beat symbol (``"N"``, ``"V"``, ``"A"``, ...) or an EDF+ annotation text.
    duration : float
        Seconds (EDF+); 0 for WFDB beats.
    channel : int
        The channel it belongs to, or -1 for all channels.
    """

    sample: int
    symbol: str
    duration: float = 0.0
    channel: int = -1


@dataclass(frozen=True)
class Signal:
    """A multichannel signal in physical units with its sampling rate and annotations.

    Attributes
    ----------
    values : torch.Tensor
        float32 ``(C, L)`` in physical units (:attr:`units`), ``C`` channels of ``L`` samples; NaN
        where the record marks a sample missing (WFDB).
    fs : float
        Sampling rate in Hz (all channels; EDF channels recorded slower are interpolated up).
    channels : tuple of str
        Channel (lead) names, e.g. ``("MLII", "V5")``.
    units : tuple of str
        Physical unit of each channel, e.g. ``("mV", "mV")``.
    annotations : tuple of Annotation
        In time order.
    metadata : dict of str to str
        Non-identifying information (format, duration).
    identifiers : dict of str to str
        What may identify a patient (EDF patient and recording fields, WFDB header comments,
        which hold age and sex, and the WFDB record's name), kept apart; never in the repr.
    format : str
        ``"WFDB"``, ``"EDF"``, ``"EDF+"``, ``"BDF"`` or ``"BDF+"``.
    source : str
        The path read; not in the repr.
    """

    values: torch.Tensor
    fs: float
    channels: tuple[str, ...]
    units: tuple[str, ...] = ()
    annotations: tuple[Annotation, ...] = ()
    metadata: dict[str, str] = field(default_factory=dict)
    identifiers: dict[str, str] = field(default_factory=dict, repr=False)
    format: str = ""
    source: str = field(default="", repr=False)

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """``(L,)``: the time axis, the signal's one spatial axis."""
        return (int(self.values.shape[-1]),)

    @property
    def duration(self) -> float:
        """Seconds."""
        return float(self.values.shape[-1]) / self.fs

    def __repr__(self) -> str:
        return (
            f"Signal(shape={tuple(self.values.shape)}, fs={self.fs:g}, channels={self.channels}, "
            f"annotations={len(self.annotations)}, format={self.format!r})"
        )


def segment_records(headers: Sequence[pathlib.Path]) -> set[pathlib.Path]:
    """The headers among ``headers`` that are parts of a multi-segment record whose master header
    is among them too (its segments and layout header): parts, not records of their own.

    A multi-segment header names itself ``record/n_segments`` on its record line; only those are
    parsed (by wfdb) for their segment names."""
    import wfdb

    given = {h.resolve() for h in headers}
    parts: set[pathlib.Path] = set()
    for hea in headers:
        if not _multi_segment(hea):
            continue
        try:
            names = wfdb.rdheader(str(hea.with_suffix(""))).seg_name or []
        except Exception:  # noqa: BLE001 - a corrupt master header: reading it as a record names the problem
            continue
        parts.update(p for p in ((hea.parent / f"{n}.hea").resolve() for n in names if n and n != "~") if p in given)
    return {h for h in headers if h.resolve() in parts}


def _multi_segment(hea: pathlib.Path) -> bool:
    """The record line (the first line that is not a comment) names ``record/n_segments``."""
    lines = _header_lines(hea)
    return bool(lines) and "/" in lines[0].split()[0]


def signal_files(hea: pathlib.Path) -> set[str]:
    """The file names a WFDB header's signal lines give (its ``.dat`` files; for a multi-segment
    header, its segments' names), read from the header's text alone."""
    return {line.split()[0] for line in _header_lines(hea)[1:]}


def _header_lines(hea: pathlib.Path) -> list[str]:
    """The lines of a WFDB header that are not comments or blank (none when it cannot be read)."""
    try:
        with open(hea, encoding="latin-1") as fh:
            return [line for line in fh.read(1 << 20).splitlines() if line.strip() and not line.lstrip().startswith("#")]
    except OSError:
        return []


def _record_base(path: PathLike) -> pathlib.Path:
    """``rec``, ``rec.hea``, ``rec.dat`` or ``rec.atr`` -> the record path without suffix."""
    p = pathlib.Path(os.fspath(path)).expanduser()
    if p.suffix.lower() in WFDB_SUFFIXES:
        p = p.with_suffix("")
    if not p.with_suffix(".hea").is_file():
        raise FileFormatError(f"WFDB header {p.with_suffix('.hea')} not found")
    return p


def _check_wfdb_size(base: pathlib.Path, memory_mb: float | None) -> None:
    """Refuse a record whose header declares more samples than the decoding limit allows."""
    import wfdb

    hea = base.with_suffix(".hea")
    try:
        header = wfdb.rdheader(str(base))
        sig_len, n_sig = header.sig_len, header.n_sig
    except Exception as exc:  # noqa: BLE001 - wfdb raises ValueError, IndexError, ... on corrupt headers
        raise FileFormatError(f"{hea} is not a readable WFDB header ({type(exc).__name__}: {_one_line(exc)})") from None
    if sig_len is None or n_sig is None:
        return  # no length given: wfdb takes it from the signal file's own size
    if int(sig_len) == 0:
        raise FileFormatError(f"{hea} declares no samples (the layout header of a multi-segment record, or an "
                              "empty record): give the record's master header")
    length = int(sig_len) * _frame_samples(header)  # every lead brought to the highest rate
    check_decoded_size(hea, (length, int(n_sig)), 8, memory_mb=memory_mb, what="samples",
                       detail=f"signal length {length} x {int(n_sig)} channels of float64")


def _frame_samples(header: Any) -> int:
    """The most samples per frame of a single-segment record's leads (1 for a multi-segment one:
    wfdb merges its segments at the frame rate)."""
    spf = getattr(header, "samps_per_frame", None) if not hasattr(header, "seg_name") else None
    return max((int(v or 1) for v in spf or ()), default=1)


def _onto_rate(x: np.ndarray, rate: float, fs: float, length: int) -> np.ndarray:
    """``x`` sampled at ``rate`` as ``length`` samples at ``fs``: linearly interpolated when the
    rates differ, cut or padded with its last value to ``length``."""
    if rate != fs:
        x = np.interp(np.arange(length) / fs, np.arange(x.size) / rate, x)
    return x[:length] if x.size >= length else np.pad(x, (0, length - x.size), mode="edge")


def _short_signal_file(base: pathlib.Path) -> str | None:
    """Why a record failed to read when a signal file is shorter than its header declares
    (``sig_len`` frames of its signals' samples in their formats, after the byte offset);
    ``None`` when each file is long enough or the header does not say (compressed formats)."""
    import wfdb
    from wfdb.io._signal import BYTES_PER_SAMPLE

    try:
        header = wfdb.rdheader(str(base))
    except Exception:  # noqa: BLE001 - read before, so this cannot fail but on a race
        return None
    if not header.sig_len or not header.file_name:
        return None
    need: dict[str, float] = {}
    for name, fmt, frame, offset in zip(header.file_name, header.fmt, header.samps_per_frame,
                                        header.byte_offset or [None] * header.n_sig, strict=False):
        per_sample = BYTES_PER_SAMPLE.get(str(fmt), 0)
        if not per_sample:
            return None
        need[name] = need.get(name, float(offset or 0)) + header.sig_len * int(frame or 1) * per_sample
    for name, size in need.items():
        f = base.parent / name
        if f.is_file() and f.stat().st_size < int(size):
            return (f"WFDB record {base.name}: {name} holds {f.stat().st_size} bytes, {base.name}.hea declares "
                    f"{header.sig_len} samples per lead, {int(size)} bytes: the signal file is truncated")
    return None


@one_line_errors("WFDB")
def load_wfdb(path: PathLike, *, annotator: str = "atr", memory_mb: float | None = None) -> Signal:
    """Read a WFDB record (``.hea`` header + signal files) and its annotations.

    Parameters
    ----------
    path : str or os.PathLike
        The record: its name without suffix, or its ``.hea`` (or ``.dat``) file.
    annotator : str, default "atr"
        Suffix of the annotation file read when present (``rec.atr``: reference beat labels).
    memory_mb : float, optional
        Memory budget: the header's signal length times its channels (float64 samples) must not
        exceed :func:`~medlens.data.formats.limits.decode_limit_bytes`.

    Returns
    -------
    Signal
        ``values`` ``(C, L)`` in the header's physical units (ADC values converted with each
        channel's gain and baseline), ``fs`` from the header, channel names and units,
        ``annotations`` with the beat symbols. Header comments (age, sex, medication) and the
        record's name (its file name) go to ``identifiers``.

    Raises
    ------
    FileFormatError
        No header; a signal file named by the header is missing or truncated; a corrupt
        header or annotation file.
    """
    import wfdb

    base = _record_base(path)
    _check_wfdb_size(base, memory_mb)
    try:
        frame = _frame_samples(wfdb.rdheader(str(base)))
        record = wfdb.rdrecord(str(base), physical=True, smooth_frames=frame == 1)
    except FileNotFoundError as exc:
        missing = pathlib.Path(exc.filename).name if getattr(exc, "filename", None) else "a signal file"
        raise FileFormatError(
            f"WFDB record {base.name}: {missing} named by {base.name}.hea is missing"
        ) from exc
    except Exception as exc:  # wfdb raises ValueError, IndexError... on corrupt headers/data
        raise FileFormatError(_short_signal_file(base) or (
            f"{base.with_suffix('.hea')} is not a readable WFDB record ({type(exc).__name__}: {_one_line(exc)})"
        )) from exc
    values, fs, interpolated = _record_values(record, frame)
    if values is None or values.ndim != 2:
        raise FileFormatError(f"WFDB record {base.name} holds no signal")
    if values.shape[0] != record.sig_len * frame:
        raise FileFormatError(
            f"WFDB record {base.name}: the signal file holds {values.shape[0] // frame} samples, "
            f"its header says {record.sig_len} (truncated?)"
        )
    # wfdb reads a sample the record marks missing as NaN: kept (a window that holds one is refused
    # or skipped where it is cut, naming the lead and the time); a tiny gain that overflows is corrupt
    infinite = np.isinf(values.astype(np.float32))
    if infinite.any():
        raise InputError(f"WFDB record {base.name} holds {int(infinite.sum())} samples beyond float32's range (its gain?)")
    annotations: list[Annotation] = []
    ann_file = base.with_suffix(f".{annotator}")
    if ann_file.is_file():
        try:
            ann = wfdb.rdann(str(base), annotator)
        except Exception as exc:  # noqa: BLE001
            raise FileFormatError(f"{ann_file} is not a readable WFDB annotation file ({_one_line(exc)})") from exc
        chans = ann.chan if ann.chan is not None else [-1] * len(ann.sample)
        # annotation times count frames unless the file gives its own rate (WFDB's high-resolution mode)
        scale = fs / float(ann.fs) if getattr(ann, "fs", None) else float(frame)
        for s, sym, ch in zip(ann.sample, ann.symbol, chans, strict=False):
            annotations.append(Annotation(int(round(int(s) * scale)), str(sym), 0.0,
                                          int(ch) if len(record.sig_name) > 1 else -1))
    metadata = {
        "Format": "WFDB",
        "Samples": str(values.shape[0]),
        "DurationSeconds": f"{values.shape[0] / fs:g}",
    }
    if interpolated:
        metadata["InterpolatedChannels"] = ", ".join(interpolated)
    if ann_file.is_file():
        metadata["Annotator"] = annotator
    # the record's name is its file name, which may name a patient: kept apart with the comments
    identifiers = {"Record": base.name, **({"Comments": " | ".join(record.comments)} if record.comments else {})}
    return Signal(
        torch.from_numpy(np.ascontiguousarray(values.T, dtype=np.float32)),
        fs,
        tuple(str(n) for n in record.sig_name),
        tuple("" if u is None else str(u) for u in (record.units or [""] * values.shape[1])),
        tuple(sorted(annotations, key=lambda a: a.sample)),
        metadata,
        identifiers,
        "WFDB",
        str(base),
    )


def _record_values(record: Any, frame: int) -> tuple[np.ndarray | None, float, list[str]]:
    """The samples ``(L, C)`` of a WFDB record, its rate and the leads interpolated onto it.

    A lead stored with several samples per frame runs at that multiple of the frame rate; wfdb's
    default averages each frame's samples (MIT-LCP's test_generator_2, 200 samples a frame,
    became 1 Hz). With ``frame`` > 1 (the record was read without that smoothing) every lead is
    brought to the highest rate, the slower ones linearly interpolated, as for EDF."""
    if frame == 1:
        return record.p_signal, float(record.fs), []
    fs = float(record.fs) * frame
    length = int(record.sig_len) * frame
    spf = [int(v or 1) for v in record.samps_per_frame]
    rows = [_onto_rate(np.asarray(x, dtype=np.float64), float(record.fs) * k, fs, length)
            for x, k in zip(record.e_p_signal, spf, strict=True)]
    slower = [str(name) for name, k in zip(record.sig_name, spf, strict=True) if k != frame]
    return np.stack(rows, 1), fs, slower


def _check_edf_size(p: pathlib.Path, memory_mb: float | None) -> None:
    """Refuse an EDF/BDF file whose header declares more samples than the decoding limit allows:
    data records x signals x the most samples per record (every channel is read as float64 and
    brought to the highest rate)."""
    with open(p, "rb") as fh:
        head = fh.read(256)
        try:
            records = int(head[236:244].decode("ascii").strip())
            ns = int(head[252:256].decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            return  # not numbers: pyedflib refuses the header itself
        if ns <= 0 or ns > 100_000:
            return
        fh.seek(256 + ns * 216)
        raw = fh.read(8 * ns)
    try:
        spr = [int(raw[8 * i: 8 * i + 8].decode("ascii").strip()) for i in range(ns)]
    except (UnicodeDecodeError, ValueError):
        return
    if len(spr) != ns or not spr or min(spr) < 0:
        return
    width = 3 if head.startswith(BDF_MAGIC) else 2
    if records < 0:  # -1: unknown (still recording): as many as the file holds
        record_bytes = sum(spr) * width
        records = max(p.stat().st_size - 256 * (ns + 1), 0) // record_bytes if record_bytes else 0
    check_decoded_size(p, (records, ns, max(spr)), 8, memory_mb=memory_mb, what="samples",
                       detail=f"{records} data records x {ns} signals x {max(spr)} samples per record of float64")


@one_line_errors("EDF/BDF")
def load_edf(path: PathLike, *, memory_mb: float | None = None) -> Signal:
    """Read an EDF, EDF+ or BDF file with pyedflib.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.edf`` / ``.bdf`` file.
    memory_mb : float, optional
        Memory budget: data records x signals x samples per record (float64) from the header
        must not exceed :func:`~medlens.data.formats.limits.decode_limit_bytes`.

    Returns
    -------
    Signal
        ``values`` ``(C, L)`` in each channel's physical dimension (digital values mapped with
        the header's physical and digital minima and maxima), ``fs`` the highest channel rate
        (slower channels are linearly interpolated onto it; named in
        ``metadata["InterpolatedChannels"]``), EDF+ annotations with their onsets as samples.
        Patient and recording fields (name, code, birth date, admin code, technician, start
        date) go to ``identifiers``.

    Raises
    ------
    FileFormatError
        Missing, truncated or corrupt file; a byte outside printable ASCII in a header field other
        than the patient and recording fields (those are read with such bytes as ``?``).
    """
    p = pathlib.Path(os.fspath(path)).expanduser()
    if not p.is_file():
        raise FileFormatError(f"EDF file not found: {p}")
    _check_edf_size(p, memory_mb)
    with ascii_header(p) as readable:
        return _read_edf(p, readable)


def _read_edf(p: pathlib.Path, readable: pathlib.Path) -> Signal:
    """:func:`load_edf` of ``p``, read by pyedflib from ``readable`` (``p`` or a copy of it with a
    header pyedflib accepts)."""
    import pyedflib

    def why(exc: BaseException) -> str:  # pyedflib's reason, naming the file, never the temporary copy's path
        return _one_line(exc).replace(str(readable), p.name)

    try:
        with silenced_stdout():
            reader = pyedflib.EdfReader(str(readable))
    except Exception as exc:  # OSError with pyedflib's reason (file is discontinuous, truncated...)
        raise FileFormatError(f"{p} is not a readable EDF/BDF file ({range_fault(p) or why(exc)})") from exc
    try:
        fmt = {0: "EDF", 1: "EDF+", 2: "BDF", 3: "BDF+"}.get(int(reader.filetype), "EDF")  # pyedflib.FILETYPE_*
        # a legacy EDF (blank reserved field) with an annotation signal: pyedflib reads it as a lead
        tals = [i for i in range(reader.signals_in_file) if is_annotation_label(reader.getLabel(i))]
        leads = [i for i in range(reader.signals_in_file) if i not in tals]
        if not leads:
            raise FileFormatError(f"{p} holds no signals (annotations only)")
        rates = [float(reader.getSampleFrequency(i)) for i in leads]
        fs = max(rates)
        duration = float(reader.getFileDuration())
        length = int(round(duration * fs))
        rows = [_onto_rate(np.asarray(reader.readSignal(i), dtype=np.float64), rate, fs, length)
                for i, rate in zip(leads, rates, strict=True)]
        interpolated = [reader.getLabel(i) for i, rate in zip(leads, rates, strict=True) if rate != fs]
        annotated = list(zip(*reader.readAnnotations(), strict=True))
        width = 3 if fmt.startswith("BDF") else 2
        for i in tals:
            annotated += tal_annotations(reader.readSignal(i, digital=True), width)
        header = reader.getHeader()
        labels = tuple(str(reader.getLabel(i)).strip() for i in leads)
        units = tuple(str(reader.getPhysicalDimension(i)).strip() for i in leads)
    except FileFormatError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise FileFormatError(f"{p} is a corrupt EDF/BDF file ({why(exc)})") from exc
    finally:
        reader.close()
    annotations = tuple(
        Annotation(int(round(float(o) * fs)), str(t), float(d) if float(d) > 0 else 0.0)
        for o, d, t in sorted(annotated, key=lambda a: float(a[0]))
    )
    identifiers = {}
    for key in ("patientname", "patientcode", "birthdate", "sex", "gender", "admincode",
                "technician", "equipment", "startdate", "patient_additional", "recording_additional"):
        value = header.get(key)
        if value not in (None, "", b""):
            identifiers[key] = str(value)
    metadata = {"Format": fmt, "Samples": str(length), "DurationSeconds": f"{duration:g}"}
    if interpolated:
        metadata["InterpolatedChannels"] = ", ".join(interpolated)
    values = np.stack(rows).astype(np.float32)
    if not np.isfinite(values).all():
        raise InputError(f"{p} holds NaN or infinite samples")
    return Signal(torch.from_numpy(values), fs, labels, units, annotations, metadata, identifiers, fmt, str(p))


def load_signal(path: PathLike, *, memory_mb: float | None = None) -> Signal:
    """Read a WFDB record or an EDF/EDF+/BDF file, whichever ``path`` is.

    Parameters
    ----------
    path : str or os.PathLike
        A WFDB record (its name, ``.hea`` or ``.dat`` file) or an ``.edf``/``.bdf`` file.

    Returns
    -------
    Signal
        See :func:`load_wfdb` and :func:`load_edf`.

    Raises
    ------
    FileFormatError
        Neither format, or unreadable (one line naming the file).
    """
    p = pathlib.Path(os.fspath(path)).expanduser()
    if p.suffix.lower() in WFDB_SUFFIXES or (not p.suffix and p.with_suffix(".hea").is_file()):
        return load_wfdb(p, memory_mb=memory_mb)
    if p.is_file():
        with open(p, "rb") as fh:
            head = fh.read(8)
        if head == EDF_MAGIC or head == BDF_MAGIC:
            return load_edf(p, memory_mb=memory_mb)
    elif not p.exists():
        raise FileFormatError(f"signal file not found: {p}")
    raise FileFormatError(
        f"{p} is not a signal format medlens reads (WFDB .hea/.dat records, EDF, EDF+, BDF)"
    )
