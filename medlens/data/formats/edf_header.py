"""EDF/BDF headers with bytes outside printable ASCII, which pyedflib (edflib) refuses outright.

The EDF specification allows only printable ASCII in the header, but hospital software writes the
patient's name as typed ("Dé^Jane" in latin-1). The patient and recording fields are free text and
identifiers, which medlens keeps apart and never shows, and a lead's unit is often "µV" (latin-1 0xB5 or
UTF-8). Such a file is read from a temporary copy in which the patient, recording, transducer and
prefiltering fields have those bytes replaced by ``?`` and a unit reads ``uV`` (``°C``: ``degC``), so
the lead is still scaled by its unit. A non-ASCII byte anywhere else (a label, a number) is refused
with one line naming the field, never quoting it.
"""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import tempfile
from typing import Iterator

from medlens.data.formats.edf_tal import is_annotation_label
from medlens.errors import FileFormatError

__all__ = ["ascii_header", "range_fault"]

#: Free-text fields of the main header that may be rewritten: (start, end, name).
_FREE_TEXT = ((8, 88, "patient"), (88, 168, "recording"))
_MAIN = ((0, 8, "version"), *_FREE_TEXT, (168, 176, "start date"), (176, 184, "start time"),
         (184, 192, "header size"), (192, 236, "reserved"), (236, 244, "number of data records"),
         (244, 252, "data record duration"), (252, 256, "number of signals"))
#: Per-signal fields: (width, name), stored field by field for all signals in turn.
_SIGNAL = ((16, "label"), (80, "transducer type"), (8, "physical dimension"), (8, "physical minimum"),
           (8, "physical maximum"), (8, "digital minimum"), (8, "digital maximum"), (80, "prefiltering"),
           (8, "samples per data record"), (32, "reserved"))


def _printable(raw: bytes) -> bool:
    return all(32 <= b <= 126 for b in raw)


def _questioned(raw: bytes) -> bytes:
    """``raw`` with every byte outside printable ASCII replaced by ``?``."""
    return bytes(b if 32 <= b <= 126 else ord("?") for b in raw)


#: Per-signal fields read with replacements instead of refused: free text, and the unit.
_SIGNAL_REWRITTEN = ("transducer type", "physical dimension", "prefiltering")
#: Non-ASCII spellings in units, as hospital software writes them (latin-1 or UTF-8), and their ASCII.
_UNIT_SPELLINGS = {"\u00b5": "u", "\u03bc": "u", "\u00b0": "deg"}


def _ascii_unit(raw: bytes) -> bytes:
    """A unit field in printable ASCII of the same width: ``µV`` (latin-1 or UTF-8) is ``uV``, ``°C``
    ``degC`` (medlens.data.units knows both); any other byte outside ASCII is ``?``."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    text = "".join(_UNIT_SPELLINGS.get(ch, ch if 32 <= ord(ch) <= 126 else "?") for ch in text.rstrip())
    return text[: len(raw)].ljust(len(raw)).encode("ascii")


def _signal_fields(p: pathlib.Path, head: bytes, ns: int) -> list[tuple[int, bytes]]:
    """The per-signal fields to rewrite as ``(offset, ASCII bytes)``; one line naming the first
    other field (and signal) holding a byte edflib refuses."""
    at, rewrites = 256, []
    for width, name in _SIGNAL:
        for i in range(ns):
            raw = head[at + width * i: at + width * (i + 1)]
            if _printable(raw):
                continue
            if name not in _SIGNAL_REWRITTEN:
                raise FileFormatError(f"{p}: the {name} of signal {i + 1} holds bytes outside printable ASCII, "
                                      "which the EDF specification forbids and pyedflib refuses")
            fixed = _ascii_unit(raw) if name == "physical dimension" else _questioned(raw)
            rewrites.append((at + width * i, fixed))
        at += width * ns
    return rewrites


@contextlib.contextmanager
def ascii_header(p: pathlib.Path) -> Iterator[pathlib.Path]:
    """``p`` itself when its header is printable ASCII (or not an EDF header medlens can size: pyedflib
    then says what is wrong); else a temporary copy whose patient, recording, transducer and
    prefiltering fields have every byte outside printable ASCII replaced by ``?`` and whose units are
    spelt in ASCII (``µV`` -> ``uV``), removed when the block ends.

    Raises
    ------
    FileFormatError
        A byte outside printable ASCII in any other header field (a label, a number: named, not quoted).
    """
    with open(p, "rb") as fh:
        head = fh.read(256)
        try:
            ns = int(head[252:256].decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            ns = 0
        head += fh.read(256 * ns) if 0 < ns <= 100_000 else b""
    if head.startswith(b"\xff"):  # BDF: "\xffBIOSEMI", the one byte the format puts outside ASCII
        head = b"0" + head[1:]
    if _printable(head) or len(head) < 256:
        yield p
        return
    for start, end, name in _MAIN:
        if not _printable(head[start:end]) and (start, end, name) not in _FREE_TEXT:
            raise FileFormatError(f"{p}: the {name} field of the header holds bytes outside printable ASCII, "
                                  "which the EDF specification forbids and pyedflib refuses")
    rewrites = _signal_fields(p, head, ns)
    rewrites += [(start, _questioned(head[start:end])) for start, end, _ in _FREE_TEXT]
    with tempfile.TemporaryDirectory(prefix="medlens-edf-") as tmp:
        copy = pathlib.Path(tmp) / p.name
        shutil.copyfile(p, copy)
        with open(copy, "r+b") as fh:
            for start, fixed in rewrites:
                fh.seek(start)
                fh.write(fixed)
        yield copy


def range_fault(p: pathlib.Path) -> str | None:
    """Why the header of ``p`` cannot scale a signal's samples, naming the signal: a physical
    minimum equal to its maximum (a range of 0), a digital minimum not below its maximum (an
    inverted or empty range), or one of the four not a number; ``None`` when every signal's ranges
    are sound (or the header cannot be sized). A physical minimum above the maximum is allowed: the
    EDF specification reads it as an inverted polarity."""
    with open(p, "rb") as fh:
        head = fh.read(256)
        try:
            ns = int(head[252:256].decode("ascii").strip())
        except (UnicodeDecodeError, ValueError):
            return None
        if not 0 < ns <= 100_000:
            return None
        head += fh.read(256 * ns)
    fields, at = {}, 256
    for width, name in _SIGNAL:
        fields[name] = [head[at + width * i: at + width * (i + 1)].decode("ascii", "replace").strip() for i in range(ns)]
        at += width * ns
    for i in range(ns):
        label = fields["label"][i]
        if is_annotation_label(label):
            continue
        where = f"signal {i + 1} ({label or 'no label'})"
        try:
            pmin, pmax = float(fields["physical minimum"][i]), float(fields["physical maximum"][i])
            dmin, dmax = int(fields["digital minimum"][i]), int(fields["digital maximum"][i])
        except ValueError:
            return f"{where} has a physical or digital minimum or maximum that is not a number"
        if pmin == pmax:
            return f"{where} has a physical range of 0 (minimum and maximum both {pmin:g}): its samples cannot be scaled"
        if dmin >= dmax:
            return (f"{where} has a digital minimum {dmin} not below its digital maximum {dmax}: its samples cannot "
                    "be scaled")
    return None
