"""Valid and hostile files for the reader tests and ``benchmarks/fuzz_readers.py``.

Every valid file is written by the format's reference library (Pillow, tifffile, pydicom,
nibabel, pyedflib, wfdb, numpy); the hostile ones are valid files whose headers declare far
more data than they hold, made by patching the header (CRCs fixed where the format has them).
"""

from __future__ import annotations

import datetime
import pathlib
import struct
import zlib

import numpy as np

# --------------------------------------------------------------------------------------------
# Valid files, written by the reference libraries
# --------------------------------------------------------------------------------------------


def _grey(shape: tuple[int, ...], dtype: str = "uint8", seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hi = np.iinfo(dtype).max if np.dtype(dtype).kind in "iu" else 1.0
    return (rng.random(shape) * hi).astype(dtype)


def write_png(path: pathlib.Path, shape: tuple[int, ...] = (12, 10), dtype: str = "uint8") -> pathlib.Path:
    from PIL import Image

    Image.fromarray(_grey(shape, dtype)).save(path, format="PNG")
    return path


def write_jpeg(path: pathlib.Path, shape: tuple[int, ...] = (16, 16, 3)) -> pathlib.Path:
    from PIL import Image

    Image.fromarray(_grey(shape)).save(path, format="JPEG", quality=90)
    return path


def write_tiff(path: pathlib.Path, shape: tuple[int, ...] = (3, 8, 9), dtype: str = "uint16",
               compression: str | None = None) -> pathlib.Path:
    import tifffile

    tifffile.imwrite(path, _grey(shape, dtype), compression=compression, photometric="minisblack")
    return path


def _dicom_dataset(rows: int, cols: int, bits: int = 16, frames: int = 1, uid_from: str | None = None):
    """``uid_from``: the instance UID is derived from it (the same bytes on every run: a seeded
    fuzzing loop mutates the same file), else random."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=[uid_from] if uid_from else None)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.PatientName = "Fuzz^Test"
    ds.Rows, ds.Columns = rows, cols
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = bits, bits, bits - 1
    ds.PixelRepresentation = 0
    ds.RescaleSlope, ds.RescaleIntercept = 1, -1024
    ds.PixelSpacing = [0.5, 0.5]
    return ds


def write_dicom(path: pathlib.Path, shape: tuple[int, int] = (8, 9), *, deflated: bool = False) -> pathlib.Path:
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = _dicom_dataset(*shape, uid_from=f"{path.name} {shape} {deflated}")
    ds.PixelData = _grey(shape, "uint16").tobytes()
    if deflated:
        ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)
    return path


def write_nifti(path: pathlib.Path, shape: tuple[int, ...] = (6, 5, 4)) -> pathlib.Path:
    import nibabel as nib

    img = nib.Nifti1Image(_grey(shape, "int16"), np.diag([1.5, 1.5, 2.0, 1.0]))
    nib.save(img, str(path))
    return path


def write_edf(path: pathlib.Path, n_signals: int = 2, seconds: int = 2, fs: int = 32) -> pathlib.Path:
    import pyedflib

    rng = np.random.default_rng(0)
    headers = [{"label": f"ch{i}", "dimension": "uV", "sample_frequency": fs, "physical_max": 100.0,
                "physical_min": -100.0, "digital_max": 32767, "digital_min": -32768} for i in range(n_signals)]
    with pyedflib.EdfWriter(str(path), n_signals, file_type=pyedflib.FILETYPE_EDFPLUS) as f:
        f.setStartdatetime(datetime.datetime(2000, 1, 1))  # not now: the same bytes on every run
        f.setSignalHeaders(headers)
        f.writeSamples([rng.uniform(-90, 90, seconds * fs) for _ in range(n_signals)])
    return path


def write_wfdb(folder: pathlib.Path, name: str = "rec", length: int = 200) -> pathlib.Path:
    """A two-lead WFDB record; returns the ``.hea`` path."""
    import wfdb

    rng = np.random.default_rng(0)
    sig = rng.uniform(-1, 1, (length, 2))
    wfdb.wrsamp(name, fs=250, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=sig,
                fmt=["16", "16"], write_dir=str(folder))
    return folder / f"{name}.hea"


def write_npy(path: pathlib.Path, shape: tuple[int, ...] = (5, 6)) -> pathlib.Path:
    np.save(path, _grey(shape, "float32"))
    return path


# --------------------------------------------------------------------------------------------
# Hostile files: the header declares far more than the file holds
# --------------------------------------------------------------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bomb(path: pathlib.Path, width: int = 100_000, height: int = 100_000, rows: int = 50) -> pathlib.Path:
    """A ~5 KB PNG whose IHDR declares ``width x height`` 8-bit grey pixels (valid CRCs; the
    IDAT holds the first ``rows`` rows of zeros)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\0" * (1 + width) * rows, 9)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
                     + _png_chunk(b"IEND", b""))
    return path


def deflated_dicom_bomb(path: pathlib.Path, rows: int = 65535, cols: int = 65535, level: int = 1) -> pathlib.Path:
    """A Deflated Explicit VR Little Endian DICOM of ``rows x cols`` 8-bit zeros, deflated in a
    stream (the inflated data set is never in memory here)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    ds = _dicom_dataset(rows, cols, bits=8)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    meta = DicomBytesIO()
    meta.is_little_endian, meta.is_implicit_VR = True, False
    write_file_meta_info(meta, ds.file_meta, enforce_standard=True)
    body = DicomBytesIO()
    body.is_little_endian, body.is_implicit_VR = True, False
    write_dataset(body, ds)
    n = rows * cols + (rows * cols) % 2
    pixel_header = b"\xe0\x7f\x10\x00OB\x00\x00" + struct.pack("<I", n)
    deflate = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
    zeros = bytes(16 * 2**20)
    with open(path, "wb") as fh:
        fh.write(b"\0" * 128 + b"DICM" + meta.getvalue())
        fh.write(deflate.compress(body.getvalue() + pixel_header))
        left = n
        while left:
            k = min(left, len(zeros))
            fh.write(deflate.compress(zeros if k == len(zeros) else zeros[:k]))
            left -= k
        fh.write(deflate.flush())
    return path


def nifti_bomb(path: pathlib.Path, dims: tuple[int, ...] = (32767, 32767, 32767)) -> pathlib.Path:
    """A valid small NIfTI-1 whose header dims are patched to ``dims`` (int16 voxels)."""
    write_nifti(path, (2, 2, 2))
    raw = bytearray(path.read_bytes())
    full = (len(dims), *dims) + (1,) * (7 - len(dims))
    raw[40:56] = struct.pack("<8h", *full)
    path.write_bytes(bytes(raw))
    return path


def edf_bomb(path: pathlib.Path, samples_per_record: int = 99_999_999, records: int = 99_999_999) -> pathlib.Path:
    """A valid small EDF whose header declares ``records`` data records of ``samples_per_record``
    samples per signal."""
    write_edf(path)
    raw = bytearray(path.read_bytes())
    ns = int(raw[252:256].decode().strip())
    raw[236:244] = f"{records:<8d}".encode()
    for i in range(ns):
        at = 256 + ns * 216 + 8 * i
        raw[at:at + 8] = f"{samples_per_record:<8d}".encode()
    path.write_bytes(bytes(raw))
    return path


def wfdb_bomb(folder: pathlib.Path, length: int = 10**15) -> pathlib.Path:
    """A valid small WFDB record whose ``.hea`` declares a signal length of ``length``."""
    hea = write_wfdb(folder, "bomb")
    lines = hea.read_text().splitlines()
    first = lines[0].split()
    first[3] = str(length)
    lines[0] = " ".join(first)
    hea.write_text("\n".join(lines) + "\n")
    return hea


def npy_bomb(path: pathlib.Path, shape: tuple[int, ...] = (100_000, 100_000, 1000)) -> pathlib.Path:
    """A valid small ``.npy`` whose header declares ``shape`` (float32): the data are 16 bytes."""
    from numpy.lib import format as npy_format

    with open(path, "wb") as fh:
        npy_format.write_array_header_2_0(fh, {"descr": "<f4", "fortran_order": False, "shape": shape})
        fh.write(bytes(16))
    return path


def corrupt_header_dicom(path: pathlib.Path) -> pathlib.Path:
    """A slice whose NumberOfFrames is not a number (``"1A"``, as in pydicom's ``badVR.dcm``):
    the folder walker's series grouping reads it before any reader does. Written valid, then the
    value's two bytes are replaced (pydicom will not write an invalid IS itself)."""
    ds = _dicom_dataset(8, 9)
    ds.ImagePositionPatient = [0, 0, 0]
    ds.NumberOfFrames = 11
    ds.PixelData = _grey((8, 9), "uint16").tobytes()
    ds.save_as(path, enforce_file_format=True)
    element = b"\x28\x00\x08\x00IS\x02\x0011"  # (0028,0008) IS, length 2, explicit VR little endian
    data = path.read_bytes()
    assert data.count(element) == 1
    path.write_bytes(data.replace(element, element[:-2] + b"1A"))
    return path
