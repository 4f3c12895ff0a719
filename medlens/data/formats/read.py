"""One entry point for every file format medlens reads: :func:`read` sniffs the format.

>>> from medlens.data import read
>>> scan = read("chest.dcm")            # doctest: +SKIP
>>> scan.array.shape, scan.spacing       # (2048, 2048) in modality units, mm
>>> scan.identifiers["PatientID"]        # kept apart from scan.metadata; never in repr or logs

Images and volumes come back as :class:`~medlens.data.formats.common.Volume` (``array``, ``spacing``,
``affine``, ``metadata``, ``identifiers``), signals as :class:`~medlens.data.formats.signals.Signal`
(``values`` ``(C, L)``, ``fs``, ``channels``, ``annotations``, ...). The model's preprocessing
recipe (:mod:`medlens.data.recipe`) turns either into a model input and maps an attribution
back onto the record's own grid.
"""

from __future__ import annotations

import gzip
import os
import zlib
import pathlib
from typing import Union

import numpy as np
import torch

from medlens.data.formats.common import PathLike, Volume, _check_finite, _one_line, one_line_errors
from medlens.data.formats.images import MAGIC
from medlens.data.formats.limits import check_decoded_size
from medlens.data.formats.signals import BDF_MAGIC, EDF_MAGIC, WFDB_SUFFIXES, Signal
from medlens.errors import FileFormatError, MedlensError

Record = Union[Volume, Signal]

#: What :func:`read` reads, for messages and ``--help``.
FORMATS = (
    "DICOM (file, series folder, multi-frame, ECG waveform)", "NIfTI (.nii, .nii.gz)", "PNG", "JPEG", "TIFF",
    "WFDB (.hea/.dat)", "EDF/EDF+/BDF", "NumPy .npy",
)


def formats_line() -> str:
    """The formats medlens reads, on one line."""
    return ", ".join(FORMATS)


def sniff(path: PathLike) -> str:
    """The format of ``path`` from its first bytes (and its suffix where bytes cannot tell).

    Returns
    -------
    str
        One of ``"DICOM"``, ``"DICOM-series"`` (a folder), ``"NIfTI"``, ``"PNG"``, ``"JPEG"``,
        ``"TIFF"``, ``"WFDB"``, ``"EDF"``, ``"NumPy"``, or ``""`` when unknown.
    """
    p = pathlib.Path(os.fspath(path)).expanduser()
    if p.is_dir():
        return "DICOM-series"
    name = p.name.lower()
    if p.suffix.lower() in WFDB_SUFFIXES and p.with_suffix(".hea").is_file():
        return "WFDB"
    if not p.suffix and p.with_suffix(".hea").is_file() and not p.is_file():
        return "WFDB"
    try:
        with open(p, "rb") as fh:
            head = fh.read(352)
    except OSError:
        return ""
    if len(head) >= 132 and head[128:132] == b"DICM":  # first: a preamble may hold a TIFF header
        return "DICOM"
    for fmt, magics in MAGIC.items():
        if head.startswith(magics):
            return fmt
    if head.startswith((EDF_MAGIC, BDF_MAGIC)):
        return "EDF"
    if head.startswith(b"\x93NUMPY"):
        return "NumPy"
    if head[344:348] in (b"n+1\x00", b"ni1\x00") or head[4:8] in (b"n+2\x00", b"ni2\x00"):
        return "NIfTI"
    if head.startswith(b"\x1f\x8b") and name.endswith((".nii.gz", ".gz")):
        try:
            with gzip.open(p, "rb") as fh:
                inner = fh.read(352)
        except (OSError, EOFError, zlib.error):  # a corrupt stream: the reader names the problem
            return "NIfTI" if name.endswith(".nii.gz") else ""
        if inner[344:348] in (b"n+1\x00", b"ni1\x00") or inner[4:8] in (b"n+2\x00", b"ni2\x00"):
            return "NIfTI"
        return ""
    if name.endswith((".nii", ".hdr")):
        return "NIfTI"
    if p.suffix.lower() in (".dcm", ".dicom", ".ima") or not p.suffix:
        return "DICOM"  # no preamble (older files): pydicom decides
    return ""


def read(path: PathLike, *, memory_mb: float | None = None) -> Record:
    """Read any file medlens understands, choosing the reader from the file's own bytes.

    Parameters
    ----------
    path : str or os.PathLike
        A DICOM file, a folder holding one DICOM series, a NIfTI image, a PNG/JPEG/TIFF picture,
        a WFDB record (``.hea``, ``.dat`` or the record name), an EDF/EDF+/BDF file, or a ``.npy``
        array (read as an image or volume of its own shape).
    memory_mb : float, optional
        Memory budget (MB, the engine's meaning; default ``MEDLENS_MEMORY_MB`` or the engine's
        default). Every reader computes the decoded size from the file's header and refuses a
        file above :func:`~medlens.data.formats.limits.decode_limit_bytes` before decoding it.

    Returns
    -------
    Volume or Signal
        Images and volumes: :class:`Volume` with ``array`` in the file's own units (HU for CT),
        ``spacing`` (mm), ``affine`` (RAS, NIfTI and DICOM), non-identifying ``metadata`` and
        ``identifiers`` kept apart. Signals: :class:`Signal` with ``values`` ``(C, L)`` in
        physical units, ``fs``, ``channels``, ``units`` and ``annotations``.

    Raises
    ------
    FileFormatError
        A missing path, or a file that is of no format medlens reads or is truncated/corrupt;
        the one-line message names the file and the formats medlens reads.
    DecodeLimitError
        (a :class:`FileFormatError`) The header declares more decoded data than the memory
        budget allows; the message names the file, the declared size and the limit in MB.
    """
    from medlens.data.formats import dicom, images, nifti, signals
    from medlens.data.formats.dicom_waveform import is_waveform, load_dicom_waveform

    p = pathlib.Path(os.fspath(path)).expanduser()
    if not p.exists() and not (not p.suffix and p.with_suffix(".hea").is_file()):
        raise FileFormatError(f"{p} does not exist")
    if p.is_file() and p.stat().st_size == 0:
        raise FileFormatError(f"{p} is empty (0 bytes): an interrupted copy or download?")
    fmt = sniff(p)
    if fmt in ("DICOM", "DICOM-series"):
        if fmt == "DICOM" and not _has_preamble(p):  # a guess from the suffix or no suffix
            try:
                return dicom.load_dicom(p, memory_mb=memory_mb)
            except FileFormatError as exc:
                if "is not a DICOM file" in str(exc):
                    raise _unknown(p) from exc
                raise
        if fmt == "DICOM" and is_waveform(p):  # a 12-lead ECG or other waveform object: a signal
            return load_dicom_waveform(p, memory_mb=memory_mb)
        return dicom.load_dicom(p, memory_mb=memory_mb)
    if fmt == "NIfTI":
        return nifti.load_nifti(p, memory_mb=memory_mb)
    if fmt in ("PNG", "JPEG"):
        return images.load_picture(p, memory_mb=memory_mb)
    if fmt == "TIFF":
        return images.load_tiff(p, memory_mb=memory_mb)
    if fmt == "WFDB":
        return signals.load_wfdb(p, memory_mb=memory_mb)
    if fmt == "EDF":
        return signals.load_edf(p, memory_mb=memory_mb)
    if fmt == "NumPy":
        return _load_npy(p, memory_mb=memory_mb)
    raise _unknown(p)


def _has_preamble(p: pathlib.Path) -> bool:
    with open(p, "rb") as fh:
        head = fh.read(132)
    return head[128:132] == b"DICM"


def _unknown(p: pathlib.Path) -> FileFormatError:
    return FileFormatError(f"{p} is not a file format medlens reads (it reads {formats_line()})")


def _npy_header(p: pathlib.Path) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype from a ``.npy`` header, nothing else read."""
    from numpy.lib import format as npy_format

    with open(p, "rb") as fh:
        version = npy_format.read_magic(fh)
        if version == (1, 0):
            shape, _fortran, dtype = npy_format.read_array_header_1_0(fh)
        elif version in ((2, 0), (3, 0)):
            shape, _fortran, dtype = npy_format.read_array_header_2_0(fh)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
    return tuple(int(s) for s in shape), np.dtype(dtype)


@one_line_errors(".npy")
def _load_npy(p: pathlib.Path, *, memory_mb: float | None = None) -> Volume:
    try:
        shape, dtype = _npy_header(p)
    except MedlensError:
        raise
    except Exception as exc:  # noqa: BLE001 - ValueError, OSError, EOFError, SyntaxError, ...
        raise FileFormatError(f"{p} is not a readable .npy array ({type(exc).__name__}: {_one_line(exc)})") from None
    if dtype.kind not in "biuf" or len(shape) < 1:
        raise FileFormatError(f"{p} holds a {dtype} array of shape {shape}; expected numbers")
    check_decoded_size(p, shape, dtype.itemsize, memory_mb=memory_mb, what="values",
                       detail=f"shape {shape} of {dtype}")
    try:
        arr = np.load(p, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - truncated data: ValueError, OSError, EOFError
        raise FileFormatError(f"{p} is not a readable .npy array ({type(exc).__name__}: {_one_line(exc)})") from exc
    if arr.dtype.kind not in "biuf" or arr.ndim < 1:
        raise FileFormatError(f"{p} holds a {arr.dtype} array of shape {arr.shape}; expected numbers")
    data = np.ascontiguousarray(arr, dtype=np.float32)
    _check_finite(data, str(p))
    return Volume(torch.from_numpy(data), (1.0,) * arr.ndim,
                  {"Format": "NumPy", "DataType": str(arr.dtype)}, {}, None, 1, "NumPy", str(p))
