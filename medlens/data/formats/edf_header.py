"""EDF/BDF headers with bytes outside printable ASCII, which pyedflib (edflib) refuses outright.

The EDF specification allows only printable ASCII in the header, but hospital software writes the
patient's name as typed ("Dé^Jane" in latin-1). The patient and recording fields are free text and
identifiers, which medlens keeps apart and never shows: a file whose only non-ASCII bytes lie there
is read from a temporary copy with those bytes replaced by ``?``. A non-ASCII byte anywhere else (a
label, a unit, a number) is refused with one line naming the field, never quoting it.
"""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import tempfile
from typing import Iterator

from medlens.errors import FileFormatError

__all__ = ["ascii_header"]

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


def _check_signal_fields(p: pathlib.Path, head: bytes, ns: int) -> None:
    """One line naming the first per-signal field (and signal) holding a byte edflib refuses."""
    at = 256
    for width, name in _SIGNAL:
        for i in range(ns):
            if not _printable(head[at + width * i: at + width * (i + 1)]):
                raise FileFormatError(f"{p}: the {name} of signal {i + 1} holds bytes outside printable ASCII, "
                                      "which the EDF specification forbids and pyedflib refuses")
        at += width * ns


@contextlib.contextmanager
def ascii_header(p: pathlib.Path) -> Iterator[pathlib.Path]:
    """``p`` itself when its header is printable ASCII (or not an EDF header medlens can size: pyedflib
    then says what is wrong); else a temporary copy whose patient and recording fields have every
    byte outside printable ASCII replaced by ``?``, removed when the block ends.

    Raises
    ------
    FileFormatError
        A byte outside printable ASCII in any other header field (named, not quoted).
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
    _check_signal_fields(p, head, ns)
    with tempfile.TemporaryDirectory(prefix="medlens-edf-") as tmp:
        copy = pathlib.Path(tmp) / p.name
        shutil.copyfile(p, copy)
        with open(copy, "r+b") as fh:
            for start, end, _ in _FREE_TEXT:
                fh.seek(start)
                fh.write(bytes(b if 32 <= b <= 126 else ord("?") for b in head[start:end]))
        yield copy
