"""DICOM output: a map a PACS viewer shows beside its source series, written with highdicom.

* :func:`write_parametric_map`: the attribution's float values as a Parametric Map (one frame
  per source slice, on the source's frame of reference and plane positions), for tomographic
  images (CT, MR) whose slices carry ``ImagePositionPatient``.
* :func:`write_secondary_capture`: a picture (the overlay, RGB) as a Secondary Capture in the
  source's study, referencing the source instance; works for any image, including projection
  radiographs (CR, DX) that have no plane position.

Both objects join the source's study (same ``StudyInstanceUID`` and patient module, as a
derived object must) in a new series, and reference the source series and instances.
``highdicom`` and ``pydicom`` are imported inside the functions.
"""

from __future__ import annotations

import functools
import os
import pathlib
import warnings
from typing import Any, Callable

import numpy as np

from medlens.data.formats.common import PathLike, Volume, _one_line
from medlens.data.formats.dicom import dicom_series_files
from medlens.data.formats.deid import PIXEL_IDENTITY_FLAGS
from medlens.errors import FileFormatError, InputError

MANUFACTURER = "medlens"


def _quiet(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Silence highdicom's warnings: they quote tag values such as the patient's name."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return fn(*args, **kwargs)

    return wrapper


def _sources(source: Volume) -> list[Any]:
    import pydicom

    if source.format != "DICOM" or not source.source:
        raise InputError("DICOM output needs a DICOM input")
    try:
        return [pydicom.dcmread(f) for f in dicom_series_files(source.source)]
    except Exception as exc:  # noqa: BLE001 - the source moved or changed since it was read
        raise FileFormatError(f"cannot re-read the source DICOM {source.source}: {_one_line(exc)}") from exc


def _reference(ds: Any) -> Any:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.ReferencedSOPClassUID = ds.SOPClassUID
    item.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    return item


def _add_series_reference(obj: Any, sources: list[Any]) -> None:
    """``ReferencedSeriesSequence`` naming the source series and its instances."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    series = Dataset()
    series.SeriesInstanceUID = sources[0].SeriesInstanceUID
    series.ReferencedInstanceSequence = Sequence([_reference(ds) for ds in sources])
    obj.ReferencedSeriesSequence = Sequence([series])


def _letters(v: Any) -> str:
    """Direction cosines in LPS -> the DICOM patient-orientation letters of the main axes."""
    names = (("L", "R"), ("P", "A"), ("H", "F"))
    out = ""
    for axis in np.argsort(-np.abs(np.asarray(v, dtype=float)))[:1]:
        out += names[axis][0] if v[axis] > 0 else names[axis][1]
    return out


def _patient_orientation(ds: Any) -> tuple[str, str]:
    """``PatientOrientation`` of the source, else from its ``ImageOrientationPatient``.

    Projection images without either are taken to be in the usual radiograph display: rows
    towards the patient's left, columns towards the feet (``("L", "F")``).
    """
    po = ds.get("PatientOrientation")
    if po is not None and len(po) == 2 and all(str(v) for v in po):
        return str(po[0]), str(po[1])
    iop = ds.get("ImageOrientationPatient")
    if iop is not None and len(iop) == 6:
        return _letters([float(v) for v in iop[:3]]), _letters([float(v) for v in iop[3:]])
    return "L", "F"


@_quiet
def write_secondary_capture(picture: np.ndarray, source: Volume, path: PathLike, *,
                            description: str = "medlens attribution overlay", series_number: int = 9901) -> pathlib.Path:
    """Write ``picture`` (uint8 RGB ``(H, W, 3)`` or grey ``(H, W)``) as a Secondary Capture.

    Parameters
    ----------
    picture : numpy.ndarray
        The overlay at the source image's size (rows x columns). For a series, the picture of
        one slice (referenced: the middle slice, or the one given by the caller's choice of
        picture).
    source : Volume
        The DICOM image or series it was computed from (:func:`medlens.data.formats.dicom.load_dicom`).
    path : str or os.PathLike
        The ``.dcm`` file to write.

    Returns
    -------
    pathlib.Path
    """
    import highdicom as hd
    from pydicom.sequence import Sequence

    sources = _sources(source)
    ref = sources[len(sources) // 2]
    pic = np.ascontiguousarray(picture)
    if pic.dtype != np.uint8:
        raise InputError(f"a Secondary Capture picture must be uint8, got {pic.dtype}")
    photometric = "RGB" if pic.ndim == 3 else "MONOCHROME2"
    try:
        sc = hd.sc.SCImage.from_ref_dataset(
            ref_dataset=ref,
            pixel_array=pic,
            photometric_interpretation=photometric,
            bits_allocated=8,
            coordinate_system="PATIENT",
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            patient_orientation=_patient_orientation(ref),
        )
    except Exception as exc:  # noqa: BLE001 - highdicom validates the source's patient/study modules
        raise FileFormatError(f"cannot build a Secondary Capture from {source.source}: {_one_line(exc)}") from exc
    sc.SeriesDescription = description[:64]
    for flag in PIXEL_IDENTITY_FLAGS:  # a picture of identifying pixels identifies as much, and must say so
        if str(ref.get(flag, "")).strip():
            setattr(sc, flag, ref.get(flag))
    sc.DerivationDescription = description[:1024]
    sc.SourceImageSequence = Sequence([_reference(ref)])
    _add_series_reference(sc, sources)
    out = pathlib.Path(os.fspath(path))
    sc.save_as(out, enforce_file_format=True)
    return out


@_quiet
def write_parametric_map(values: np.ndarray, source: Volume, path: PathLike, *,
                         description: str = "medlens attribution", series_number: int = 9902) -> pathlib.Path:
    """Write the attribution's float values as a DICOM Parametric Map on the source's grid.

    Parameters
    ----------
    values : numpy.ndarray
        ``source.spatial_shape``: ``(H, W)`` for one image, ``(D, H, W)`` for a series, slices in
        the order :func:`medlens.data.formats.dicom.load_dicom` stacked them.
    source : Volume
        A tomographic DICOM image or series (slices with ``ImagePositionPatient`` and
        ``FrameOfReferenceUID``).
    path : str or os.PathLike
        The ``.dcm`` file to write.

    Raises
    ------
    InputError
        ``values`` does not match the source's grid.
    FileFormatError
        The source lacks what a Parametric Map needs (plane positions, frame of reference):
        write a Secondary Capture instead.
    """
    import highdicom as hd
    from pydicom.sr.codedict import codes

    sources = _sources(source)
    arr = np.asarray(values, dtype=np.float32)
    if tuple(arr.shape) != tuple(source.spatial_shape):
        raise InputError(f"map of shape {arr.shape} does not match the DICOM grid {source.spatial_shape}")
    frames = arr[None] if arr.ndim == 2 else arr
    if len(sources) != frames.shape[0]:
        raise FileFormatError(
            f"{source.source}: a Parametric Map needs one source slice per frame ({len(sources)} files for {frames.shape[0]} frames)"
        )
    lo, hi = float(frames.min()), float(frames.max())
    mapping = hd.pm.RealWorldValueMapping(
        lut_label="attribution",
        lut_explanation=description[:64],
        unit=codes.UCUM.NoUnits,
        value_range=(lo, hi if hi > lo else lo + 1.0),
        slope=1.0,
        intercept=0.0,
    )
    m = max(abs(lo), abs(hi)) or 1.0
    try:
        pm = hd.pm.ParametricMap(
            source_images=sources,
            pixel_array=frames,
            series_instance_uid=hd.UID(),
            series_number=series_number,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=MANUFACTURER,
            manufacturer_model_name="medlens",
            software_versions="medlens",
            device_serial_number="none",
            contains_recognizable_visual_features=False,
            real_world_value_mappings=[mapping],
            voi_lut_transformations=[hd.VOILUTTransformation(
                window_center=0.0 if lo < 0 else (lo + hi) / 2,
                window_width=2 * m if lo < 0 else max(hi - lo, 1e-6),
            )],
            content_description=description[:64],
            # frames in the order medlens stacked them, each at its source slice's position
            plane_positions=[
                hd.PlanePositionSequence("PATIENT", [float(v) for v in ds.ImagePositionPatient]) for ds in sources
            ],
            plane_orientation=hd.PlaneOrientationSequence(
                "PATIENT", [float(v) for v in sources[0].ImageOrientationPatient]
            ),
            pixel_measures=hd.PixelMeasuresSequence(
                pixel_spacing=[float(v) for v in sources[0].PixelSpacing],
                slice_thickness=float(sources[0].get("SliceThickness") or source.spacing[0]),
            ),
        )
    except Exception as exc:  # noqa: BLE001
        raise FileFormatError(f"cannot build a Parametric Map on {source.source}: {_one_line(exc)}") from exc
    out = pathlib.Path(os.fspath(path))
    pm.save_as(out, enforce_file_format=True)
    return out
