"""Mutations of valid files and the readers' property, shared by ``tests/data/test_fuzz_readers.py``
(hypothesis, few examples) and ``benchmarks/fuzz_readers.py`` (many examples).

A mutation is a list of operations on a valid file written by the format's reference library:

* ``("truncate", fraction)``: keep the first ``fraction`` of the bytes;
* ``("flip", fraction, bit)``: flip one bit at ``fraction`` of the file's length;
* ``("field", name, value)``: set one header field (dimensions, data type, lengths, offsets,
  counts...) to ``value``, usually an extreme (0, -1, 2**31 - 1, 2**32 - 1, NaN, ...).

For a WFDB record each operation names the file it mutates (``.hea`` or ``.dat``).

The property (:func:`check`): reading the mutated file either raises a
:class:`~medlens.errors.MedlensError` whose message is one line, or returns a valid record (a
``Volume`` or ``Signal`` with a finite float32 array whose shape agrees with its geometry); any
other exception is a bug.
"""

from __future__ import annotations

import math
import pathlib
import re
import struct
import tempfile
import zlib
from typing import Any, Sequence

import torch

from tests.data import hostile_files as H

FORMATS = ("png", "jpeg", "tiff", "dicom", "dicom-deflated", "nifti", "nifti-gz", "edf", "wfdb", "npy")

INT_EXTREMES = (0, 1, 2, 3, 7, 8, 16, 255, 256, 32767, 32768, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1,
                -1, -2, -32768, -(2**31))
FLOAT_EXTREMES = (0.0, -1.0, 1e-30, 1e30, 3.4e38, float("nan"), float("inf"), float("-inf"))
TEXT_EXTREMES = ("0", "-1", "1", "99999999", "-9999999", "1e308", "nan", "inf", "abc", "", "0.0000001", "2147483648")

# --------------------------------------------------------------------------------------------
# Valid files, written once per process
# --------------------------------------------------------------------------------------------

_VALID: dict[str, dict[str, bytes]] = {}


def valid_files(fmt: str) -> dict[str, bytes]:
    """``{file name: bytes}`` of one valid file (two for WFDB) of ``fmt``."""
    if fmt not in _VALID:
        with tempfile.TemporaryDirectory() as tmp:
            d = pathlib.Path(tmp)
            if fmt == "png":
                paths = [H.write_png(d / "f.png", (12, 10), "uint16")]
            elif fmt == "jpeg":
                paths = [H.write_jpeg(d / "f.jpg", (16, 16, 3))]
            elif fmt == "tiff":
                paths = [H.write_tiff(d / "f.tif", (3, 8, 9), "uint16")]
            elif fmt == "dicom":
                paths = [H.write_dicom(d / "f.dcm", (8, 9))]
            elif fmt == "dicom-deflated":
                paths = [H.write_dicom(d / "f.dcm", (8, 9), deflated=True)]
            elif fmt == "nifti":
                paths = [H.write_nifti(d / "f.nii", (6, 5, 4))]
            elif fmt == "nifti-gz":
                paths = [H.write_nifti(d / "f.nii.gz", (6, 5, 4))]
            elif fmt == "edf":
                paths = [H.write_edf(d / "f.edf", 2, 2, 16)]
            elif fmt == "wfdb":
                hea = H.write_wfdb(d, "f", 100)
                paths = [hea, hea.with_suffix(".dat")]
            elif fmt == "npy":
                paths = [H.write_npy(d / "f.npy", (5, 6))]
            else:
                raise KeyError(fmt)
            _VALID[fmt] = {p.name: p.read_bytes() for p in paths}
    return _VALID[fmt]


def main_file(fmt: str) -> str:
    """The name of the file :func:`medlens.data.formats.read.read` is given."""
    return next(iter(valid_files(fmt)))


# --------------------------------------------------------------------------------------------
# Header fields of each format: name -> (getter of the offset in the bytes, struct format)
# --------------------------------------------------------------------------------------------


def _png_fields() -> dict[str, tuple[int, str]]:
    return {"width": (16, ">I"), "height": (20, ">I"), "bit_depth": (24, ">B"), "colour_type": (25, ">B"),
            "interlace": (28, ">B")}


def _jpeg_fields(data: bytes) -> dict[str, tuple[int, str]]:
    at = data.find(b"\xff\xc0")
    if at < 0:
        return {}
    return {"precision": (at + 4, ">B"), "height": (at + 5, ">H"), "width": (at + 7, ">H"),
            "components": (at + 9, ">B")}


_TIFF_TAGS = {256: "ImageWidth", 257: "ImageLength", 258: "BitsPerSample", 259: "Compression",
              262: "Photometric", 273: "StripOffsets", 277: "SamplesPerPixel", 278: "RowsPerStrip",
              279: "StripByteCounts", 284: "PlanarConfig", 339: "SampleFormat"}


def _tiff_fields(data: bytes) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    if data[:4] != b"II*\x00":
        return out
    ifd = struct.unpack("<I", data[4:8])[0]
    page = 0
    while 0 < ifd < len(data) - 2 and page < 4:
        n = struct.unpack("<H", data[ifd:ifd + 2])[0]
        for i in range(n):
            at = ifd + 2 + 12 * i
            if at + 12 > len(data):
                break
            tag, typ = struct.unpack("<HH", data[at:at + 4])
            if tag in _TIFF_TAGS:
                out[f"page{page}.{_TIFF_TAGS[tag]}"] = (at + 8, "<H" if typ == 3 else "<I")
        out[f"page{page}.entries"] = (ifd, "<H")
        nxt = ifd + 2 + 12 * n
        if nxt + 4 > len(data):
            break
        ifd = struct.unpack("<I", data[nxt:nxt + 4])[0]
        page += 1
    return out


_DICOM_TAGS = {"SamplesPerPixel": (0x0028, 0x0002), "Rows": (0x0028, 0x0010), "Columns": (0x0028, 0x0011),
               "BitsAllocated": (0x0028, 0x0100), "BitsStored": (0x0028, 0x0101), "HighBit": (0x0028, 0x0102),
               "PixelRepresentation": (0x0028, 0x0103)}


def _dicom_fields(data: bytes) -> dict[str, tuple[int, str]]:
    out: dict[str, tuple[int, str]] = {}
    for name, (g, e) in _DICOM_TAGS.items():
        at = data.find(struct.pack("<HH", g, e) + b"US\x02\x00")
        if at >= 0:
            out[name] = (at + 8, "<H")
    at = data.find(b"\xe0\x7f\x10\x00OW\x00\x00")
    if at >= 0:
        out["PixelData.length"] = (at + 8, "<I")
    at = data.find(b"\x02\x00\x00\x00UL\x04\x00")
    if at >= 0:
        out["FileMetaGroupLength"] = (at + 8, "<I")
    return out


def _nifti_fields() -> dict[str, tuple[int, str]]:
    out = {f"dim[{i}]": (40 + 2 * i, "<h") for i in range(8)}
    out.update({"sizeof_hdr": (0, "<i"), "datatype": (70, "<h"), "bitpix": (72, "<h"), "vox_offset": (108, "<f"),
                "scl_slope": (112, "<f"), "scl_inter": (116, "<f"), "pixdim[1]": (80, "<f"), "qform_code": (252, "<h"),
                "sform_code": (254, "<h"), "xyzt_units": (123, "<B"), "srow_x[0]": (280, "<f")})
    return out


def _edf_fields(data: bytes) -> dict[str, tuple[int, str]]:
    try:
        ns = int(data[252:256].decode("ascii").strip())
    except ValueError:
        ns = 0
    out = {"header_bytes": (184, "a8"), "records": (236, "a8"), "record_duration": (244, "a8"), "signals": (252, "a4")}
    base = 256 + 96 * ns
    for i in range(min(ns, 3)):
        out[f"physical_min[{i}]"] = (base + 8 * ns + 8 * i, "a8")
        out[f"physical_max[{i}]"] = (base + 16 * ns + 8 * i, "a8")
        out[f"digital_min[{i}]"] = (base + 24 * ns + 8 * i, "a8")
        out[f"digital_max[{i}]"] = (base + 32 * ns + 8 * i, "a8")
        out[f"samples_per_record[{i}]"] = (256 + 216 * ns + 8 * i, "a8")
    return out


def fields(fmt: str, data: bytes) -> dict[str, tuple[int, str]]:
    """The mutable header fields of a file of ``fmt``: ``{name: (offset, struct format)}``
    (``"aN"``: ASCII of width N; WFDB and NumPy headers are text, see :func:`apply`)."""
    if fmt == "png":
        return _png_fields()
    if fmt == "jpeg":
        return _jpeg_fields(data)
    if fmt == "tiff":
        return _tiff_fields(data)
    if fmt == "dicom":
        return _dicom_fields(data)
    if fmt == "nifti":
        return _nifti_fields()
    if fmt == "edf":
        return _edf_fields(data)
    return {}


#: Field names for the text headers: WFDB ``.hea`` tokens (line, token) and NumPy header keys.
WFDB_TOKENS = tuple((line, tok) for line in range(3) for tok in range(9))
NPY_FIELDS = ("shape", "descr", "fortran_order")
NPY_VALUES = {"shape": ("()", "(0,)", "(-1, 5)", "(5, 6, 7)", "(2**40,)", "(1000000000, 1000000000)", "(30,)", "(5,)",
                        "'x'", "(5.5, 6)"),
              "descr": ("'<f8'", "'|O'", "'<U4'", "'>i2'", "'|b1'", "'<c8'", "'|V8'", "'<f2'", "'x'", "'<M8[s]'"),
              "fortran_order": ("True", "1", "'yes'")}


def _set_field(data: bytearray, offset: int, fmt: str, value: Any) -> None:
    if fmt.startswith("a"):
        width = int(fmt[1:])
        text = str(value).ljust(width)[:width].encode("ascii", "replace")
        data[offset:offset + width] = text
        return
    size = struct.calcsize(fmt)
    if offset + size > len(data):
        return
    code = fmt[-1]
    if code in "fd":
        v = float(value)
    else:
        bits = 8 * size
        v = int(value) if not isinstance(value, float) or math.isfinite(value) else 0
        v &= (1 << bits) - 1
        if code.islower() and v >= 1 << (bits - 1):  # signed field: wrap into range
            v -= 1 << bits
    data[offset:offset + size] = struct.pack(fmt, v)


def _fix_png_crcs(data: bytearray) -> None:
    at = 8
    while at + 12 <= len(data):
        length = struct.unpack(">I", data[at:at + 4])[0]
        end = at + 8 + length
        if end + 4 > len(data):
            return
        data[end:end + 4] = struct.pack(">I", zlib.crc32(bytes(data[at + 4:end])) & 0xFFFFFFFF)
        at = end + 4


def apply(fmt: str, ops: Sequence[tuple], files: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """The files of ``fmt`` after the operations ``ops``."""
    files = dict(files or valid_files(fmt))
    names = list(files)
    for op in ops:
        kind = op[0]
        target = names[op[-1] % len(names)] if fmt == "wfdb" else names[0]
        data = bytearray(files[target])
        if kind == "truncate":
            data = data[: int(len(data) * op[1])]
        elif kind == "flip" and data:
            at = min(int(len(data) * op[1]), len(data) - 1)
            data[at] ^= 1 << (op[2] % 8)
        elif kind == "field":
            name, value = op[1], op[2]
            if fmt == "wfdb":
                target = names[0]
                data = bytearray(_wfdb_token(files[target].decode("ascii", "replace"), name, value).encode())
            elif fmt == "npy":
                try:
                    data = bytearray(_npy_header(files[target], name, value))
                except Exception:  # noqa: BLE001 - an earlier operation broke the header: leave it
                    pass
            else:
                where = fields(fmt, bytes(data)).get(name)
                if where is not None:
                    _set_field(data, where[0], where[1], value)
                    if fmt == "png":
                        _fix_png_crcs(data)
        files[target] = bytes(data)
    return files


def _wfdb_token(text: str, where: tuple[int, int], value: Any) -> str:
    lines = text.splitlines()
    line, tok = where
    if line < len(lines):
        tokens = lines[line].split()
        if tok < len(tokens):
            tokens[tok] = str(value)
            lines[line] = " ".join(tokens)
    return "\n".join(lines) + "\n"


def _npy_header(data: bytes, key: str, value: str) -> bytes:
    from numpy.lib import format as npy_format
    import io

    fh = io.BytesIO(data)
    npy_format.read_magic(fh)
    shape, fortran, dtype = npy_format.read_array_header_1_0(fh)
    body = data[fh.tell():]
    header = {"descr": repr(npy_format.dtype_to_descr(dtype)), "fortran_order": repr(fortran), "shape": repr(shape)}
    header[key] = value
    text = "{" + ", ".join(f"'{k}': {v}" for k, v in header.items()) + ", }"
    text = text + " " * ((64 - (len(text) + 11) % 64) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode("latin-1") + body


# --------------------------------------------------------------------------------------------
# Drawing mutations: with hypothesis (the tests) or with a seeded random generator (the benchmark)
# --------------------------------------------------------------------------------------------


def field_names(fmt: str) -> list[Any]:
    if fmt == "wfdb":
        return list(WFDB_TOKENS)
    if fmt == "npy":
        return list(NPY_FIELDS)
    return sorted(fields(fmt, valid_files(fmt)[main_file(fmt)]))


def field_values(fmt: str, name: Any) -> tuple:
    if fmt == "npy":
        return NPY_VALUES[name]
    if fmt == "wfdb":
        return TEXT_EXTREMES + tuple(str(v) for v in INT_EXTREMES) + ("16", "212", "80", "8", "0/mV", "1e-300/mV")
    where = fields(fmt, valid_files(fmt)[main_file(fmt)])[name]
    if where[1].startswith("a"):
        return TEXT_EXTREMES
    if where[1][-1] in "fd":
        return FLOAT_EXTREMES
    return INT_EXTREMES


def random_ops(fmt: str, rng: Any, max_ops: int = 3) -> list[tuple]:
    """A mutation drawn with ``rng`` (a :class:`random.Random`)."""
    ops = []
    names = field_names(fmt)
    for _ in range(rng.randint(1, max_ops)):
        kind = rng.choice(("truncate", "flip", "flip", "field", "field") if names else ("truncate", "flip"))
        if kind == "truncate":
            op: tuple = ("truncate", rng.random())
        elif kind == "flip":
            op = ("flip", rng.random() ** 2 if rng.random() < 0.5 else rng.random(), rng.randrange(8))
        else:
            name = rng.choice(names)
            op = ("field", name, rng.choice(field_values(fmt, name)))
        ops.append(op + ((rng.randrange(2),) if fmt == "wfdb" else ()))
    return ops


def hypothesis_ops(fmt: str):
    """A hypothesis strategy of mutations of ``fmt``."""
    from hypothesis import strategies as st

    wfdb_file = (st.integers(0, 1),) if fmt == "wfdb" else ()
    truncate = st.tuples(st.just("truncate"), st.floats(0, 1), *wfdb_file)
    # flips cluster near the start, where the headers are
    flip = st.tuples(st.just("flip"), st.one_of(st.floats(0, 0.1), st.floats(0, 1)), st.integers(0, 7), *wfdb_file)
    names = field_names(fmt)
    options = [truncate, flip]
    if names:
        field = st.sampled_from(names).flatmap(
            lambda n: st.tuples(st.just("field"), st.just(n), st.sampled_from(field_values(fmt, n)), *wfdb_file))
        options.append(field)
    return st.lists(st.one_of(*options), min_size=1, max_size=3)


# --------------------------------------------------------------------------------------------
# The property
# --------------------------------------------------------------------------------------------


class PropertyViolation(AssertionError):
    """A reader returned something invalid, or raised a MedlensError of several lines."""


def check_record(record: Any) -> None:
    """A valid record: a Volume or Signal with a finite float32 array of a consistent shape."""
    from medlens.data.formats.common import Volume
    from medlens.data.formats.signals import Signal

    if isinstance(record, Volume):
        arr = record.array
        spatial = tuple(arr.shape[1:] if record.channels > 1 else arr.shape)
        if record.channels > 1 and arr.shape[0] != record.channels:
            raise PropertyViolation(f"channels {record.channels} but array shape {tuple(arr.shape)}")
        if len(record.spacing) != len(spatial):
            raise PropertyViolation(f"spacing {record.spacing} for spatial shape {spatial}")
        if not all(math.isfinite(s) for s in record.spacing):
            raise PropertyViolation(f"non-finite spacing {record.spacing}")
    elif isinstance(record, Signal):
        arr = record.values
        if arr.ndim != 2 or arr.shape[0] != len(record.channels):
            raise PropertyViolation(f"signal of shape {tuple(arr.shape)} with {len(record.channels)} channel names")
        if not (math.isfinite(record.fs) and record.fs > 0):
            raise PropertyViolation(f"sampling rate {record.fs}")
    else:
        raise PropertyViolation(f"read returned a {type(record).__name__}")
    if not isinstance(arr, torch.Tensor) or arr.dtype != torch.float32:
        raise PropertyViolation(f"array of type {type(arr).__name__} {getattr(arr, 'dtype', '')}")
    finite = torch.isfinite(arr) | (torch.isnan(arr) if getattr(record, "format", "") == "NIfTI" else False)
    if arr.numel() and not bool(finite.all()):  # NIfTI keeps NaN (documented: masks)
        raise PropertyViolation(f"non-finite values in an array of shape {tuple(arr.shape)}")


def check(fmt: str, ops: Sequence[tuple], memory_mb: float = 4.0) -> str:
    """Write the mutated file, read it, check the property.

    Returns
    -------
    str
        ``"read"`` for a valid record, else the MedlensError subclass's name.

    Raises
    ------
    PropertyViolation
        An invalid record or a multi-line message.
    Exception
        Whatever else the reader raised (a bug: the caller reports the traceback).
    """
    from medlens.data.formats.read import read
    from medlens.errors import MedlensError

    files = apply(fmt, ops)
    with tempfile.TemporaryDirectory() as tmp:
        d = pathlib.Path(tmp)
        for name, data in files.items():
            (d / name).write_bytes(data)
        path = d / main_file(fmt)
        try:
            record = read(path, memory_mb=memory_mb)
        except MedlensError as err:
            msg = str(err)
            if "\n" in msg or not msg.strip():
                raise PropertyViolation(f"{type(err).__name__} message is not one line: {msg!r}") from err
            return type(err).__name__
        check_record(record)
        return "read"


def describe(ops: Sequence[tuple]) -> str:
    return re.sub(r"\s+", " ", repr(list(ops)))
