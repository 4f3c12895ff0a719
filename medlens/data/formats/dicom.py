"""DICOM: single images, series folders and multi-frame objects, in modality units.

Rescale Slope/Intercept are applied (CT in Hounsfield units), MONOCHROME1 images are inverted so
that higher always means brighter, and compressed transfer syntaxes are decoded by pydicom's
pixel-data plugins (pylibjpeg, pylibjpeg-libjpeg, pylibjpeg-openjpeg where installed).
``pydicom`` is imported inside the functions that need it.
"""

from __future__ import annotations

import math
import os
import pathlib
import warnings
from typing import Any

import numpy as np
import torch

from medlens.data.formats.common import PathLike, Volume, _one_line, colour_channels_first, one_line_errors
from medlens.data.formats.dicom_limits import check_dicom_size, guard_deflated, read_header
from medlens.data.formats.dicom_slide import assemble_tiles, check_slide_size, is_tiled_slide
from medlens.data.formats.slice_geometry import SliceGeometryWarning, slice_geometry
from medlens.errors import FileFormatError, InputError, MedlensError

# --------------------------------------------------------------------------------------------
# DICOM
# --------------------------------------------------------------------------------------------

#: DICOM keywords copied into :attr:`Volume.metadata` (non-identifying).
DICOM_METADATA_TAGS: tuple[str, ...] = (
    "Modality",
    "BodyPartExamined",
    "ImageType",
    "Manufacturer",
    "ManufacturerModelName",
    "MagneticFieldStrength",
    "KVP",
    "ConvolutionKernel",
    "RepetitionTime",
    "EchoTime",
    "SliceThickness",
    "SpacingBetweenSlices",
    "PixelSpacing",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "ImageOrientationPatient",
    "PatientPosition",
    "PhotometricInterpretation",
    "SamplesPerPixel",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
    "SOPClassUID",
    "BurnedInAnnotation",  # the pixels carry text that names the patient (medlens.data.formats.deid)
    "RecognizableVisualFeatures",
)

#: DICOM keywords copied into :attr:`Volume.identifiers` (identify a patient, study or site).
DICOM_IDENTIFIER_TAGS: tuple[str, ...] = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "PatientWeight",
    "OtherPatientIDs",
    "AccessionNumber",
    "StudyID",
    "StudyDescription",
    "SeriesDescription",  # free text, often the patient's or the operator's words (PS3.15: remove)
    "ProtocolName",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "DeviceSerialNumber",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "StudyDate",
    "StudyTime",
    "SeriesDate",
    "SeriesTime",
    "AcquisitionDate",
    "AcquisitionTime",
    "ContentDate",
    "ContentTime",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
)

# Files in a series folder that are clearly not DICOM images and are skipped silently.
_NOT_DICOM_SUFFIXES = frozenset(
    {
        *(".txt", ".md", ".rst", ".csv", ".tsv", ".json", ".xml", ".html", ".htm", ".pdf"),
        *(".log", ".ini", ".cfg", ".yaml", ".yml", ".py", ".sh", ".bat"),
        *(".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff"),
        *(".nii", ".gz", ".zip", ".tar", ".npz", ".npy", ".mat", ".db"),
    }
)
_NOT_DICOM_NAMES = frozenset({"dicomdir", "thumbs.db", "desktop.ini", "readme", "license"})
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"


def _dicom_str(value: Any) -> str:
    from pydicom.multival import MultiValue

    if isinstance(value, (MultiValue, list, tuple)):
        return "\\".join(_dicom_str(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace")
    return str(value)


def _collect_tags(ds: Any, keywords: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for kw in keywords:
        if kw not in ds:
            continue
        elem = ds[kw]
        if elem.VR == "SQ":  # sequences (e.g. OtherPatientIDsSequence) are not flattened
            continue
        value = elem.value
        if value is None or value == "":
            continue
        out[kw] = _dicom_str(value)
    return out


# --------------------------------------------------------------------------------------------
# Sizes declared by the header, checked before decoding (and before inflating a deflated file)
# --------------------------------------------------------------------------------------------

def _read_dicom(p: pathlib.Path, memory_mb: float | None = None) -> Any:
    """The dataset of ``p``; pydicom's warnings about odd values are not the user's errors, and
    a file without the 128-byte preamble and ``DICM`` prefix (older files) is read when it holds
    DICOM image or study attributes. A deflated file is checked against the decoding limit
    before pydicom inflates it."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    guard_deflated(p, memory_mb)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _declare_found_encoding(pydicom.dcmread(p))
    except InvalidDicomError as exc:
        ds = _read_without_preamble(p)
        if ds is None:
            raise FileFormatError(f"{p} is not a DICOM file ({_one_line(exc)})") from exc
        return ds
    except MedlensError:
        raise
    except Exception as exc:  # pydicom raises many types on corrupt files
        raise FileFormatError(
            f"{p} is a corrupt DICOM file ({type(exc).__name__}: {_one_line(exc)})"
        ) from exc


#: Attributes that any DICOM object carries; a forced read holding none of them was not DICOM.
_DICOM_EVIDENCE = ("SOPClassUID", "Modality", "StudyInstanceUID", "SeriesInstanceUID", "Rows", "PixelData")


def _read_without_preamble(p: pathlib.Path) -> Any:
    """A DICOM data set written without preamble and file meta information, or ``None``.

    The transfer syntax such a file does not declare is the encoding pydicom found.
    """
    import pydicom

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = pydicom.dcmread(p, force=True)
    except Exception:  # noqa: BLE001 - a file that is not DICOM fails in many ways
        return None
    if not any(k in ds for k in _DICOM_EVIDENCE):
        return None
    return _declare_found_encoding(ds)


def _declare_found_encoding(ds: Any) -> Any:
    """``ds`` with the transfer syntax its file meta omits (a file without preamble, or with file
    meta lacking (0002,0010)) set to the encoding pydicom read it in: an uncompressed one, since
    encapsulated pixel data cannot be parsed without a declared syntax."""
    from pydicom.uid import ExplicitVRBigEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

    if "TransferSyntaxUID" not in ds.file_meta and ds.original_encoding[0] is not None:
        implicit, little = ds.original_encoding
        ds.file_meta.TransferSyntaxUID = (
            ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian if little else ExplicitVRBigEndian
        )
    return ds


def _what_without_pixels(ds: Any) -> str:
    """What a DICOM object without pixel data is, for the message: a structured report, plan or
    waveform holds no image; an image object without its pixels was cut short or stripped."""
    from pydicom.uid import UID

    sop = str(ds.get("SOPClassUID", "") or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "") or "")
    if not sop:
        return " (it may be truncated)"
    name = UID(sop).name
    if name == sop:  # a class pydicom does not name
        return f" (SOP class {sop})"
    if "Image Storage" in name:
        return f" (a {name} object without its pixels: truncated, or stripped of them)"
    return f": it is a {name} object, not an image (SOP class {sop})"


#: SOP classes of DICOM segmentations: Segmentation Storage and Label Map Segmentation Storage.
SEGMENTATION_SOP_CLASSES = ("1.2.840.10008.5.1.4.1.1.66.4", "1.2.840.10008.5.1.4.1.1.66.7")


def _refuse_segmentation(ds: Any, p: pathlib.Path) -> None:
    """A DICOM SEG object holds a mask drawn on a scan, not a scan: its frames are segments."""
    sop = str(ds.get("SOPClassUID", "") or getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "") or "")
    if sop in SEGMENTATION_SOP_CLASSES or str(ds.get("Modality", "")).strip().upper() == "SEG":
        raise FileFormatError(
            f"{p} is a DICOM segmentation (SEG), not a scan: give the scan it was drawn on as the input; a mask "
            "goes to --target-mask (explain) or the mask column of --labels (audit, evaluate) as NIfTI, PNG or "
            ".npy on the scan's grid, not as DICOM SEG"
        )


def _dicom_pixels(ds: Any, p: pathlib.Path, memory_mb: float | None = None) -> np.ndarray:
    """Pixel array with RescaleSlope/RescaleIntercept applied, float64; the declared size is
    checked against the decoding limit first. A segmentation (SEG) is refused."""
    _refuse_segmentation(ds, p)
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        raise FileFormatError(f"{p} has no pixel data{_what_without_pixels(ds)}")
    check_dicom_size(ds, p, memory_mb)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    if samples not in (1, 3):
        raise FileFormatError(f"{p} has {samples} samples per pixel; medlens reads grey and colour (3) DICOM")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = ds.pixel_array  # colour comes as RGB (pydicom converts YBR)
    except Exception as exc:  # missing decoder plug-in, truncated pixel data, ...
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", syntax)
        raise FileFormatError(
            f"{p}: cannot decode pixel data (transfer syntax {name}): {_one_line(exc)}"
        ) from exc
    if _modality_lut(ds) is not None:  # a lookup table instead of Rescale Slope/Intercept (PS3.3 C.11.1)
        return _through_modality_lut(pixels, ds)
    arr = np.asarray(pixels, dtype=np.float64)
    slope, intercept = (_frames_first(v, arr) for v in _rescale(ds))
    arr = arr * slope + intercept
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
        # MONOCHROME1: the lowest value is displayed white. Reflect the values within the range
        # the stored bits can hold, so that higher means brighter as in MONOCHROME2.
        bits = int(ds.get("BitsStored", ds.get("BitsAllocated", 16)) or 16)
        signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
        lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        arr = (lo * slope + intercept) + (hi * slope + intercept) - arr
    return arr


def _colour_first(arr: np.ndarray, ds: Any, p: pathlib.Path, window: tuple[float, float] | None
                  ) -> tuple[np.ndarray, int]:
    """A colour frame ``(H, W, 3)`` as ``(3, H, W)``, colour frames ``(F, H, W, 3)`` (a cine loop) as
    ``(3, F, H, W)``, with ``channels=3`` (like an RGB picture; grey stored as colour becomes grey);
    grey pixel data unchanged with ``channels=1``."""
    if int(ds.get("SamplesPerPixel", 1) or 1) == 1:
        return arr, 1
    if arr.ndim not in (3, 4):  # a frame (H, W, 3) or frames (F, H, W, 3): an ultrasound cine loop
        raise FileFormatError(f"{p} has colour pixel data of unsupported shape {arr.shape}")
    if window is not None:
        raise InputError(f"{p} is a colour image ({ds.get('PhotometricInterpretation', 'RGB')}); a window applies to grey CT values")
    arr, channels, _ = colour_channels_first(arr)
    return arr, channels


def _modality_lut(ds: Any) -> Any:
    """The Modality LUT Sequence's item, or ``None`` when the file has none (or an empty one)."""
    seq = ds.get("ModalityLUTSequence")
    return seq[0] if seq and "LUTData" in seq[0] and "LUTDescriptor" in seq[0] else None


def _through_modality_lut(pixels: np.ndarray, ds: Any) -> np.ndarray:
    """Stored values through the Modality LUT (pydicom's ``apply_modality_lut``: below the first
    mapped value the first entry, above the last the last), MONOCHROME1 reflected within the
    table's output range."""
    from pydicom.pixels import apply_modality_lut

    arr = np.asarray(apply_modality_lut(pixels, ds), dtype=np.float64)
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "MONOCHROME1":
        table = np.asarray(_modality_lut(ds).LUTData, dtype=np.float64)
        arr = table.min() + table.max() - arr
    return arr


def _lut_max(ds: Any) -> int | None:
    """The largest value a Modality LUT can give (its entries' bits), ``None`` without one."""
    lut = _modality_lut(ds)
    return None if lut is None else 2 ** int(lut.LUTDescriptor[2]) - 1


def _rescale(ds: Any) -> tuple[float | np.ndarray, float | np.ndarray]:
    """Rescale Slope and Intercept, from the top level or an enhanced object's shared groups; else
    each frame's own (Per-frame Functional Groups): arrays ``(frames,)`` when they differ."""
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if slope in (None, "") and "SharedFunctionalGroupsSequence" in ds:
        group = ds.SharedFunctionalGroupsSequence[0]
        if "PixelValueTransformationSequence" in group:
            item = group.PixelValueTransformationSequence[0]
            slope, intercept = item.get("RescaleSlope"), item.get("RescaleIntercept")
    if slope in (None, "") and intercept in (None, ""):
        per_frame = _per_frame_rescale(ds)
        if per_frame is not None:
            return per_frame
    slope = 1.0 if slope in (None, "") else float(slope)
    intercept = 0.0 if intercept in (None, "") else float(intercept)
    return slope, intercept


def _per_frame_rescale(ds: Any) -> tuple[float | np.ndarray, float | np.ndarray] | None:
    """Each frame's Rescale Slope and Intercept from its Pixel Value Transformation, or ``None``
    when a frame has none (or the groups do not match the frame count); floats when all agree."""
    groups = ds.get("PerFrameFunctionalGroupsSequence") or []
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    if len(groups) != frames or not all("PixelValueTransformationSequence" in g for g in groups):
        return None
    items = [g.PixelValueTransformationSequence[0] for g in groups]
    slopes = np.array([float(i.get("RescaleSlope") if i.get("RescaleSlope") not in (None, "") else 1.0) for i in items])
    intercepts = np.array([float(i.get("RescaleIntercept") if i.get("RescaleIntercept") not in (None, "") else 0.0)
                           for i in items])
    if np.all(slopes == slopes[0]) and np.all(intercepts == intercepts[0]):
        return float(slopes[0]), float(intercepts[0])
    return slopes, intercepts


def _frames_first(values: float | np.ndarray, arr: np.ndarray) -> float | np.ndarray:
    """A per-frame value shaped to broadcast over ``arr`` ``(frames, ...)``; a float as it is."""
    return values if np.ndim(values) == 0 else np.reshape(values, (-1,) + (1,) * (arr.ndim - 1))


def _unscaled(ds: Any) -> bool:
    """Whether the stored values are used as they are (slope 1 and intercept 0 for every frame)."""
    slope, intercept = _rescale(ds)
    return bool(np.all(np.asarray(slope) == 1.0) and np.all(np.asarray(intercept) == 0.0))


def _shared_group(ds: Any, sequence: str, keyword: str) -> Any:
    """``keyword`` from the first item of ``sequence`` in the shared or first per-frame group."""
    for groups in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence"):
        if groups in ds and len(ds[groups].value) and sequence in ds[groups][0]:
            item = ds[groups][0][sequence][0]
            if keyword in item:
                return item.get(keyword)
    return None


def _dicom_affine(
    ipp: Any, iop: Any, row_sp: float, col_sp: float, slice_step: np.ndarray | None
) -> tuple[tuple[float, ...], ...] | None:
    """4x4 affine from array indices ``(slice, row, column)`` (or ``(row, column, 0)``) to RAS mm.

    DICOM's ``ImageOrientationPatient`` holds the direction of increasing column index, then of
    increasing row index, in patient LPS; ``slice_step`` is the LPS vector between consecutive
    slices (``None`` for one image: the slice normal is used as the third column).
    """
    if ipp is None or iop is None or len(ipp) != 3 or len(iop) != 6:
        return None
    origin = np.array([float(v) for v in ipp])
    along_row = np.array([float(v) for v in iop[:3]])  # direction of increasing column index
    along_col = np.array([float(v) for v in iop[3:]])  # direction of increasing row index
    m = np.eye(4)
    if slice_step is None:
        normal = np.cross(along_row, along_col)
        m[:3, 0], m[:3, 1], m[:3, 2] = along_col * row_sp, along_row * col_sp, normal
    else:
        m[:3, 0], m[:3, 1], m[:3, 2] = slice_step, along_col * row_sp, along_row * col_sp
    m[:3, 3] = origin
    m[:2] *= -1.0  # LPS -> RAS
    return tuple(tuple(float(v) for v in row) for row in m)


def _frame_geometry(ds: Any, iop: Any, frames: int) -> tuple[float, np.ndarray | None]:
    """The distance between a multi-frame object's frames and the step from one to the next (the
    affine's third column; ``None`` without an orientation).

    From the frames' own positions (an enhanced CT or MR object keeps them per frame) when every
    frame has one, else ``SpacingBetweenSlices`` / ``SliceThickness`` at the top level or in the
    shared Pixel Measures, else 1 mm."""
    normal = None
    if iop is not None and len(iop) == 6:
        normal = _unit(np.cross(_unit(np.array([float(v) for v in iop[:3]])), _unit(np.array([float(v) for v in iop[3:]]))))
    positions = [item.PlanePositionSequence[0].get("ImagePositionPatient")
                 if "PlanePositionSequence" in item else None for item in ds.get("PerFrameFunctionalGroupsSequence") or []]
    if normal is not None and frames > 1 and len(positions) == frames and all(v is not None and len(v) == 3 for v in positions):
        points = np.array([[float(v) for v in pos] for pos in positions])
        gaps = np.diff(points @ normal)
        if np.all(np.abs(gaps) > 1e-6):
            return float(np.median(np.abs(gaps))), (points[-1] - points[0]) / (frames - 1)
    for keyword in ("SpacingBetweenSlices", "SliceThickness"):
        value = ds.get(keyword) or _shared_group(ds, "PixelMeasuresSequence", keyword)
        if value not in (None, "") and float(value) > 0:
            return float(value), None if normal is None else normal * float(value)
    return 1.0, None if normal is None else normal


def _pixel_spacing(ds: Any) -> tuple[float, float]:
    for kw in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(kw)
        if value is not None and len(value) == 2:
            return float(value[0]), float(value[1])
    value = _shared_group(ds, "PixelMeasuresSequence", "PixelSpacing")
    if value is not None and len(value) == 2:
        return float(value[0]), float(value[1])
    return 1.0, 1.0


def _apply_window(arr: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    if window is None:
        return arr
    try:
        center, width = (float(v) for v in window)
    except (TypeError, ValueError):
        raise InputError(f"window must be (center, width), got {window!r}") from None
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
        raise InputError(f"window width must be a positive finite number, got {window!r}")
    low = center - width / 2.0
    return np.clip((arr - low) / width, 0.0, 1.0)


def _clearly_not_dicom(p: pathlib.Path) -> bool:
    name = p.name.lower()
    return (
        name.startswith(".") or name in _NOT_DICOM_NAMES or p.suffix.lower() in _NOT_DICOM_SUFFIXES
    )


def _numbers(values: Any) -> str:
    """``[1, 0, 0, 0, 0.96, -0.28]``: values for a message, without numpy's ``np.float64(...)``."""
    return "[" + ", ".join(f"{float(v):.4g}" for v in values) + "]"


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


@one_line_errors("DICOM")
def load_dicom(path: PathLike, *, window: tuple[float, float] | None = None,
               memory_mb: float | None = None) -> Volume:
    """Read a DICOM image or a folder holding one DICOM series.

    ``RescaleSlope`` / ``RescaleIntercept`` are applied when present, so CT values are in
    Hounsfield units. With ``window=(center, width)`` values are clipped to
    ``[center - width/2, center + width/2]`` and mapped linearly to ``[0, 1]``:
    ``clip((x - (center - width/2)) / width, 0, 1)``.

    A folder is read non-recursively. Hidden files, ``DICOMDIR`` and files whose suffix marks
    them as something else (``.txt``, ``.json``, ``.png``, ...) are skipped; any other file that
    is not readable DICOM is an error. All slices must belong to one ``SeriesInstanceUID`` and
    have the same rows x columns. Slices are ordered by ``ImagePositionPatient`` projected on the
    slice normal (the cross product of the two ``ImageOrientationPatient`` direction cosines),
    ascending; when some slice lacks position or orientation, by ``InstanceNumber`` (then file
    name). The slice spacing is the median distance between consecutive slice positions
    (a warning is issued when it varies by more than 1 %), else ``SpacingBetweenSlices``, else
    ``SliceThickness``, else 1.0.

    Parameters
    ----------
    path : str or os.PathLike, or list of them
        One DICOM file, a folder holding the files of one series, or the list of files of one
        series (e.g. several series lying loose in one folder; ``Volume.source`` is then the
        files' paths joined by newlines).
    window : tuple of (float, float), optional
        ``(center, width)`` in output units (HU for CT).
    memory_mb : float, optional
        Memory budget: Rows x Columns x NumberOfFrames x SamplesPerPixel x BitsAllocated/8 (times
        the slices of a series) must not exceed
        :func:`~medlens.data.formats.limits.decode_limit_bytes`; checked from the header before
        the pixel data are decoded (and, for Deflated Explicit VR Little Endian files, before the
        data set is inflated beyond the limit).

    Returns
    -------
    Volume
        ``array`` float32: ``(H, W)`` (rows, columns) for a single-frame file or a whole-slide
        image's tiles assembled into its total pixel matrix (:mod:`.dicom_slide`), ``(frames, H, W)``
        for a multi-frame file, ``(D, H, W)`` for a folder (even of one slice). ``spacing`` in mm
        from ``PixelSpacing`` (row spacing, column spacing; ``ImagerPixelSpacing`` or 1.0 when
        absent) and the slice spacing. ``metadata`` / ``identifiers`` from the first slice
        (see :data:`DICOM_METADATA_TAGS`, :data:`DICOM_IDENTIFIER_TAGS`).

    Raises
    ------
    FileFormatError
        Missing path; corrupt or non-DICOM file (named); no pixel data; undecodable pixel data;
        empty folder; several series in a folder; slices of different shapes or orientations;
        two slices at the same position.
    InputError
        Invalid ``window``.
    """
    if isinstance(path, (list, tuple)):
        files = [pathlib.Path(os.fspath(f)).expanduser() for f in path]
        if not files:
            raise FileFormatError("no DICOM files given")
        return _load_dicom_series(files[0].parent, window, files, memory_mb=memory_mb)
    p = pathlib.Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise FileFormatError(f"DICOM file or folder not found: {p}")
    if p.is_dir():
        return _load_dicom_series(p, window, memory_mb=memory_mb)

    ds = _read_dicom(p, memory_mb)
    slide = is_tiled_slide(ds)  # a whole-slide image's frames are tiles of one picture, not slices
    if slide:
        check_slide_size(ds, p, memory_mb)
    arr = _dicom_pixels(ds, p, memory_mb)
    if slide:
        arr = assemble_tiles(arr, ds, p)
    arr, channels = _colour_first(arr, ds, p, window)
    row_sp, col_sp = _pixel_spacing(ds)
    spatial_rank = arr.ndim - (channels > 1)
    if spatial_rank == 2:
        spacing: tuple[float, ...] = (row_sp, col_sp)
    ipp = ds.get("ImagePositionPatient") or _shared_group(
        ds, "PlanePositionSequence", "ImagePositionPatient"
    )
    iop = ds.get("ImageOrientationPatient") or _shared_group(
        ds, "PlaneOrientationSequence", "ImageOrientationPatient"
    )
    step = None
    if spatial_rank == 2:
        spacing: tuple[float, ...] = (row_sp, col_sp)
    elif spatial_rank == 3:
        slice_sp, step = _frame_geometry(ds, iop, int(arr.shape[-3]))
        spacing = (slice_sp, row_sp, col_sp)
    else:
        raise FileFormatError(f"{p} has pixel data of unsupported shape {arr.shape}")
    arr = _apply_window(arr, window)
    metadata = _collect_tags(ds, DICOM_METADATA_TAGS)
    if window is None and _lut_max(ds) is not None:  # values through a Modality LUT: its entries' range
        metadata["MaxValue"] = str(_lut_max(ds))
    elif window is None and _unscaled(ds) and int(ds.get("PixelRepresentation", 0) or 0) == 0:
        # stored grey levels without a modality scale (CR, DX, MG, US): their range is fixed
        metadata["MaxValue"] = str(2 ** int(ds.get("BitsStored", ds.get("BitsAllocated", 16)) or 16) - 1)
    return Volume(
        torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)),
        spacing,
        metadata,
        _collect_tags(ds, DICOM_IDENTIFIER_TAGS),
        affine=_dicom_affine(ipp, iop, row_sp, col_sp, step),
        channels=channels,
        format="DICOM",
        source=str(p),
    )


def _load_dicom_series(folder: pathlib.Path, window: tuple[float, float] | None,
                       given: list[pathlib.Path] | None = None, *, memory_mb: float | None = None) -> Volume:
    entries = sorted(folder.iterdir()) if given is None else sorted(given)
    files = [e for e in entries if e.is_file() and not _clearly_not_dicom(e)] if given is None else entries
    if not files:
        subdirs = [e.name for e in entries if e.is_dir()]
        hint = f" (it has subfolders: {', '.join(subdirs[:5])}; point at one series folder)"
        raise FileFormatError(f"no DICOM files in folder {folder}{hint if subdirs else ''}")

    slices = []
    for f in files:
        ds = _read_dicom(f, memory_mb)
        sop = str(ds.get("SOPClassUID", "")) or str(
            getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "")
        )
        if sop == _DICOMDIR_SOP_CLASS:
            continue
        slices.append((f, ds))
    if not slices:
        raise FileFormatError(f"no DICOM image files in folder {folder} (only a DICOMDIR)")

    uids = sorted({str(ds.get("SeriesInstanceUID", "")) for _, ds in slices})
    if len(uids) > 1:
        raise FileFormatError(
            f"folder {folder} holds {len(uids)} series (different SeriesInstanceUID); "
            f"point at a folder holding one series"
        )
    first_f, first = slices[0]
    check_dicom_size(first, folder, memory_mb, slices=len(slices))  # the stacked volume
    size0 = (first.get("Rows"), first.get("Columns"))
    for f, ds in slices:
        size = (ds.get("Rows"), ds.get("Columns"))
        if size != size0:
            raise FileFormatError(
                f"{f.name} is {size[0]}x{size[1]} but {first_f.name} is {size0[0]}x{size0[1]} "
                f"(Rows x Columns); all slices of a series must have the same shape"
            )
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if frames > 1 and len(slices) > 1:
            raise FileFormatError(
                f"{f} is a multi-frame file ({frames} frames) inside a series folder; "
                f"load it on its own"
            )

    # Order the slices.
    geometry: list[tuple[np.ndarray, np.ndarray]] | None = []
    for _, ds in slices:
        ipp, iop = ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")
        if ipp is None or iop is None or len(ipp) != 3 or len(iop) != 6:
            geometry = None
            break
        geometry.append((np.array([float(v) for v in ipp]), np.array([float(v) for v in iop])))

    positions = None
    if geometry is not None:
        iop0 = geometry[0][1]
        for (f, _), (_, iop) in zip(slices, geometry, strict=True):
            if not np.allclose(iop, iop0, atol=1e-4):
                raise FileFormatError(
                    f"{f} has ImageOrientationPatient {_numbers(iop)} but {slices[0][0].name} has "
                    f"{_numbers(iop0)}; a series folder must hold parallel slices (a localizer series "
                    f"holds several planes: give its files one by one)"
                )
        normal = _unit(np.cross(_unit(iop0[:3]), _unit(iop0[3:])))
        positions = np.array([float(ipp @ normal) for ipp, _ in geometry])
        order = np.argsort(positions, kind="stable")
        positions = positions[order]
        dup = np.flatnonzero(np.diff(positions) < 1e-6)
        if dup.size:
            i = int(dup[0])
            fa, fb = slices[int(order[i])][0], slices[int(order[i + 1])][0]
            raise FileFormatError(
                f"{fa.name} and {fb.name} in {folder} lie at the same slice position "
                f"({positions[i]:.3f} mm); the folder may hold several volumes (time points, "
                f"echoes)"
            )
    else:
        keys = []
        for i, (_, ds) in enumerate(slices):
            inst = ds.get("InstanceNumber")
            keys.append((0, int(inst), i) if inst not in (None, "") else (1, 0, i))
        order = np.array([k[2] for k in sorted(keys)], dtype=np.int64)
    slices = [slices[int(i)] for i in order]

    first_f, first = slices[0]
    planes: list[np.ndarray] = []
    for f, ds in slices:
        arr = _dicom_pixels(ds, f, memory_mb)
        if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
            raise FileFormatError(f"{f} is a colour slice; medlens reads series of grey slices (and colour files one by one)")
        if arr.ndim == 3 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 2:
            raise FileFormatError(f"{f} has pixel data of unsupported shape {arr.shape}")
        if planes and arr.shape != planes[0].shape:
            raise FileFormatError(
                f"{f.name} is {arr.shape[0]}x{arr.shape[1]} but {first_f.name} is "
                f"{planes[0].shape[0]}x{planes[0].shape[1]}; all slices of a series must have "
                f"the same shape"
            )
        planes.append(arr)
    volume = np.stack(planes)

    row_sp, col_sp = _pixel_spacing(first)
    slice_sp = float(first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0)
    affine = None
    problems: tuple[str, ...] = ()
    if geometry is not None:
        normal = _unit(np.cross(_unit(iop0[:3]), _unit(iop0[3:])))
        step = normal * slice_sp
        if len(slices) > 1:  # a missing slice, uneven spacing, gantry tilt: said, never silent
            stack = slice_geometry(np.array([[float(v) for v in ds.ImagePositionPatient] for _, ds in slices]), normal)
            slice_sp, step, problems = stack.spacing, stack.step, stack.problems
            for problem in problems:
                warnings.warn(f"DICOM series in {folder} has {problem}", SliceGeometryWarning, stacklevel=3)
        affine = _dicom_affine(first.ImagePositionPatient, first.ImageOrientationPatient,
                               row_sp, col_sp, step)
    volume = _apply_window(volume, window)
    metadata = _collect_tags(first, DICOM_METADATA_TAGS)
    metadata.update(_series_pixel_flags(slices))
    metadata["NumberOfSlices"] = str(len(slices))
    return Volume(
        torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32)),
        (slice_sp, row_sp, col_sp),
        metadata,
        _collect_tags(first, DICOM_IDENTIFIER_TAGS),
        affine=affine,
        format="DICOM",
        source=str(folder) if given is None else "\n".join(str(f) for f in files),
        geometry_warnings=tuple(f"The DICOM series has {problem}." for problem in problems),
    )


def _series_pixel_flags(slices: list[tuple[Any, Any]]) -> dict[str, str]:
    """``{flag: "YES"}`` for each of BurnedInAnnotation / RecognizableVisualFeatures that any slice
    of a series sets: one slice with a name burned in is enough to withhold the series' pixels,
    whatever the first slice says."""
    from medlens.data.formats.deid import pixel_identity_flags

    return {flag: "YES" for _, ds in slices for flag in pixel_identity_flags(ds)}


def dicom_series_files(path: PathLike) -> list[pathlib.Path]:
    """The files of the DICOM image or series at ``path``, in the order :func:`load_dicom` stacks them.

    Writers use it to reference the source instances (a folder's slices sorted as in the volume).
    """
    if isinstance(path, str) and "\n" in path:  # a series given as a list of files
        files = [pathlib.Path(f) for f in sorted(path.split("\n"))]
    else:
        p = pathlib.Path(os.fspath(path)).expanduser()
        if p.is_file():
            return [p]
        files = [e for e in sorted(p.iterdir()) if e.is_file() and not _clearly_not_dicom(e)]
    keyed = []
    for i, f in enumerate(files):
        ds = read_header(f)
        if str(ds.get("SOPClassUID", "")) == _DICOMDIR_SOP_CLASS:
            continue
        ipp, iop = ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")
        if ipp is not None and iop is not None and len(ipp) == 3 and len(iop) == 6:
            normal = np.cross([float(v) for v in iop[:3]], [float(v) for v in iop[3:]])
            keyed.append(((0, float(np.dot([float(v) for v in ipp], normal)), i), f))
        else:
            inst = ds.get("InstanceNumber")
            keyed.append(((1, float(inst) if inst not in (None, "") else 0.0, i), f))
    return [f for _, f in sorted(keyed, key=lambda t: t[0])]
