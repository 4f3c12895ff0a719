"""DICOM sizes checked before decoding: the declared pixel data against the decoding limit, and
deflated files inflated in bounded steps.

pydicom inflates a Deflated Explicit VR Little Endian data set whole before it parses a single
element (an 18 MB file of 65535 x 65535 zeros becomes 4 GB, then 8 GB at the peak), even to read
its header. Here the file meta is parsed by hand, and a deflated data set is inflated step by step:
:func:`guard_deflated` refuses a file that declares, or inflates to, more than the decoding limit,
and :func:`read_header` reads the elements before the pixel data from the first inflated bytes
only, so grouping a folder's files by series never inflates a whole file.
"""

from __future__ import annotations

import pathlib
import struct
import warnings
import zlib
from typing import Any

from medlens.data.formats.common import _one_line
from medlens.data.formats.limits import MB, DecodeLimitError, _mb, check_decoded_size, decode_limit_bytes
from medlens.errors import FileFormatError

__all__ = ["DEFLATED", "check_dicom_size", "declared_pixels", "guard_deflated", "read_header"]

DEFLATED = "1.2.840.10008.1.2.1.99"
PIXEL_DATA_TAG = b"\xe0\x7f\x10\x00"  # (7FE0,0010), little endian
HEADER_PREFIX = 8 * MB  # inflated bytes searched for the header before the pixel data
INFLATE_STEP = 4 * MB


def declared_pixels(ds: Any, p: pathlib.Path) -> tuple[tuple[int, ...], float, str] | None:
    """``(shape, bytes per sample, description)`` of the pixel data the header declares, or
    ``None`` when it does not say Rows and Columns."""
    try:
        if ds.get("Rows") in (None, "") or ds.get("Columns") in (None, ""):
            return None
        rows, cols = int(ds.get("Rows")), int(ds.get("Columns"))
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        bits = int(ds.get("BitsAllocated", 16) or 16)
    except Exception as exc:  # noqa: BLE001 - a value that is not a number
        raise FileFormatError(
            f"{p} has a corrupt image header (Rows, Columns, NumberOfFrames, SamplesPerPixel or "
            f"BitsAllocated: {type(exc).__name__}: {_one_line(exc)})"
        ) from None
    nbytes = max(bits, 1) / 8
    detail = (f"Rows {rows} x Columns {cols} x NumberOfFrames {frames} x SamplesPerPixel {samples} "
              f"x BitsAllocated {bits}/8")
    return (frames, rows, cols, samples), nbytes, detail


def check_dicom_size(ds: Any, p: Any, memory_mb: float | None, slices: int = 1) -> None:
    declared = declared_pixels(ds, p if isinstance(p, pathlib.Path) else pathlib.Path(str(p)))
    if declared is None:
        return
    shape, nbytes, detail = declared
    if slices > 1:
        detail = f"{slices} slices x {detail}"
    check_decoded_size(p, (slices, *shape), nbytes, memory_mb=memory_mb, detail=detail)


def meta_transfer_syntax(fh: Any) -> str | None:
    """The TransferSyntaxUID of a file with preamble, leaving ``fh`` at the data set's first byte."""
    head = fh.read(132)
    if len(head) < 132 or head[128:132] != b"DICM":
        return None
    syntax = None
    while True:
        pos = fh.tell()
        tag = fh.read(8)
        if len(tag) < 8:
            return syntax
        group, elem = struct.unpack("<HH", tag[:4])
        if group != 2:
            fh.seek(pos)
            return syntax
        if tag[4:6] in (b"OB", b"OW", b"OF", b"SQ", b"UT", b"UN"):
            extra = fh.read(4)
            if len(extra) < 4:
                return syntax
            length = struct.unpack("<I", extra)[0]
        else:
            length = struct.unpack("<H", tag[6:8])[0]
        if length > MB:  # not a file meta element pydicom would accept either
            return syntax
        value = fh.read(length)
        if elem == 0x0010:
            syntax = value.rstrip(b"\x00 ").decode("ascii", "replace")


def header_of_prefix(prefix: bytes) -> Any:
    """The data elements before the pixel data in the first inflated bytes of a deflated file."""
    from pydicom.dataset import Dataset
    from pydicom.filebase import DicomBytesIO
    from pydicom.filereader import data_element_generator

    for vr in (b"OW", b"OB"):
        at = prefix.find(PIXEL_DATA_TAG + vr)
        if at >= 0:
            prefix = prefix[:at]
            break
    fp = DicomBytesIO(bytes(prefix))
    fp.is_little_endian, fp.is_implicit_VR = True, False
    elements = {}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for raw in data_element_generator(fp, False, True, defer_size=MB):
                elements[raw.tag] = raw
    except Exception:  # noqa: BLE001 - the prefix ends inside an element
        pass
    return Dataset(elements)


def guard_deflated(p: pathlib.Path, memory_mb: float | None) -> None:
    """Refuse a Deflated Explicit VR Little Endian file that declares, or inflates to, more than
    the decoding limit, inflating it in bounded steps (pydicom inflates the whole data set at
    once, before anything could be checked)."""
    with open(p, "rb") as fh:
        try:
            syntax = meta_transfer_syntax(fh)
        except (OSError, struct.error):
            return
        if syntax != DEFLATED:
            return
        limit = decode_limit_bytes(memory_mb)
        bound = limit + min(limit, HEADER_PREFIX)  # the pixels may fill the limit; the rest is header
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        prefix = bytearray()
        total, checked = 0, False
        while not inflater.eof:
            chunk = inflater.unconsumed_tail or fh.read(INFLATE_STEP)
            if not chunk:
                break
            try:
                out = inflater.decompress(chunk, INFLATE_STEP)
            except zlib.error as exc:
                raise FileFormatError(f"{p} is a corrupt deflated DICOM file (zlib: {_one_line(exc)})") from None
            total += len(out)
            if not checked:
                prefix += out[: HEADER_PREFIX - len(prefix)]
                if len(prefix) >= HEADER_PREFIX or any(PIXEL_DATA_TAG + vr in prefix for vr in (b"OW", b"OB")):
                    check_dicom_size(header_of_prefix(bytes(prefix)), p, memory_mb)
                    checked, prefix = True, bytearray()
            if total > bound:
                raise DecodeLimitError(
                    f"{p}: its deflated data set inflates to more than {_mb(bound)} MB, beyond the decoding "
                    f"limit of {_mb(limit)} MB for its pixels (raise it with --memory-mb, memory_mb= or MEDLENS_MEMORY_MB)"
                )
        if not checked and prefix:
            check_dicom_size(header_of_prefix(bytes(prefix)), p, memory_mb)


def read_header(p: pathlib.Path, specific_tags: list[str] | None = None) -> Any:
    """The data elements of ``p`` before its pixel data, never inflating more than
    :data:`HEADER_PREFIX` bytes of a deflated file (pydicom's ``stop_before_pixels`` would
    inflate all of it). Raises what ``pydicom.dcmread`` raises on a file that is not DICOM."""
    import pydicom

    with open(p, "rb") as fh:
        try:
            syntax = meta_transfer_syntax(fh)
        except (OSError, struct.error):
            syntax = None
        if syntax == DEFLATED:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            prefix = bytearray()
            while len(prefix) < HEADER_PREFIX and not inflater.eof:
                chunk = inflater.unconsumed_tail or fh.read(INFLATE_STEP)
                if not chunk:
                    break
                prefix += inflater.decompress(chunk, HEADER_PREFIX - len(prefix))
                if any(PIXEL_DATA_TAG + vr in prefix for vr in (b"OW", b"OB")):
                    break
            return header_of_prefix(bytes(prefix))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(p, stop_before_pixels=True, specific_tags=specific_tags)
