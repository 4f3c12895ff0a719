"""NIfTI-1/NIfTI-2 images with their affine, read and written with nibabel.

``nibabel`` is imported inside the functions that need it.
"""

from __future__ import annotations

import pathlib

import numpy as np
import torch

from medlens.data.formats.common import PathLike, Volume, _existing_file, _one_line, one_line_errors
from medlens.data.formats.limits import check_decoded_size
from medlens.errors import FileFormatError, MedlensError

# --------------------------------------------------------------------------------------------
# NIfTI
# --------------------------------------------------------------------------------------------

_UNIT_TO_MM = {"mm": 1.0, "meter": 1000.0, "micron": 0.001, "unknown": 1.0}
MAX_CHANNEL_VOLUMES = 16  # a 4-D image with at most this many volumes is read as channels
FREE_TEXT = ("descrip", "aux_file", "db_name", "intent_name")  # header fields a user may write a name in


@one_line_errors("NIfTI")
def load_nifti(path: PathLike, *, memory_mb: float | None = None) -> Volume:
    """Read a NIfTI-1 or NIfTI-2 image (``.nii``, ``.nii.gz``, or an ``.hdr``/``.img`` pair).

    The data are returned in the file's voxel axis order (``i, j, k``); nothing is reoriented or
    resampled. The orientation of those axes is recorded in ``metadata["AxisCodes"]`` (e.g.
    ``"RAS"``: axis 0 runs towards the patient's right, ...) and the voxel-to-world affine in
    ``metadata["Affine"]``. ``scl_slope`` / ``scl_inter`` are applied. NaN values are kept.

    Parameters
    ----------
    path : str or os.PathLike
        The NIfTI file.
    memory_mb : float, optional
        Memory budget; an image whose header dimensions times its data type's size exceed
        :func:`~medlens.data.formats.limits.decode_limit_bytes` is refused before its data are read.

    Returns
    -------
    Volume
        ``array`` float32 of shape ``(I, J, K)`` (or ``(I, J)`` for a 2-D image); a 4-D image
        whose last axis has length 1 is squeezed to 3-D; one with 2 to
        :data:`MAX_CHANNEL_VOLUMES` volumes (MRI sequences or echoes stacked, as BraTS-style
        multi-modal inputs are) is read as channels, ``(C, I, J, K)`` with ``channels=C``. ``spacing`` from the header zooms,
        converted to mm when the header gives metres or microns. ``identifiers`` holds the
        free-text header fields (:data:`FREE_TEXT`) when set, since they may name a patient.

    Raises
    ------
    FileFormatError
        Missing or corrupt file, a format other than NIfTI, or an image with more than
        :data:`MAX_CHANNEL_VOLUMES` volumes or more than four non-singleton axes (e.g. a long
        4-D time series: select one volume first).
    """
    import nibabel as nib

    p = _existing_file(path, "NIfTI file")
    try:
        img = nib.load(str(p))
    except Exception as exc:  # ImageFileError, HeaderDataError, OSError, EOFError, zlib.error...
        raise FileFormatError(
            f"{p} is not a readable NIfTI file ({type(exc).__name__}: {_one_line(exc)})"
        ) from exc
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti2Image, nib.Nifti1Pair, nib.Nifti2Pair)):
        kind = "an Analyze 7.5 image (.hdr/.img, no reliable orientation)" if "Analyze" in type(img).__name__ \
            else f"a {type(img).__name__}"
        raise FileFormatError(f"{p} is {kind}, not a NIfTI image: convert it to NIfTI (.nii.gz) with its orientation")
    try:
        shape = tuple(int(s) for s in img.shape)
        dtype = np.dtype(img.get_data_dtype())
    except Exception as exc:  # noqa: BLE001 - a header nibabel accepted but cannot describe
        raise FileFormatError(f"{p} has a corrupt NIfTI header ({type(exc).__name__}: {_one_line(exc)})") from None
    check_decoded_size(p, shape, dtype.itemsize, memory_mb=memory_mb, what="voxels",
                       detail=f"{' x '.join(str(s) for s in shape)} voxels of {dtype}")
    keep = len(shape)
    while keep > 3 and shape[keep - 1] == 1:
        keep -= 1
    stacked = keep == 4 and shape[3] <= MAX_CHANNEL_VOLUMES
    if (keep > 3 and not stacked) or keep < 2:
        raise FileFormatError(
            f"{p} has shape {shape}; medlens reads 2-D and 3-D images and 4-D stacks of at most "
            f"{MAX_CHANNEL_VOLUMES} volumes as channels (select a single volume of a longer 4-D series first)"
        )
    try:
        data = img.get_fdata(dtype=np.float32)
    except MedlensError:
        raise
    except Exception as exc:  # truncated or corrupt data block
        raise FileFormatError(
            f"{p} is corrupt: cannot read its voxel data ({type(exc).__name__}: {_one_line(exc)})"
        ) from exc
    data = data.reshape(shape[:keep])
    channels = 1
    if stacked:
        data, channels, keep = np.moveaxis(data, -1, 0), shape[3], 3

    if np.isinf(data).any():  # NaN is kept (masks), an infinity is a corrupt value or scale
        raise FileFormatError(f"{p} holds {int(np.isinf(data).sum())} infinite voxel values (corrupt data or scl_slope)")
    header = img.header
    try:
        space_unit, _ = header.get_xyzt_units()
        factor = _UNIT_TO_MM.get(space_unit, 1.0)
        zooms = header.get_zooms()
        spacing = tuple(float(z) * factor for z in zooms[:keep])
        affine = img.affine
        axcodes = "".join(nib.aff2axcodes(affine)) if affine is not None and keep == 3 else None
    except Exception as exc:  # noqa: BLE001 - unknown unit codes, a singular or NaN affine, ...
        raise FileFormatError(f"{p} has a corrupt NIfTI header ({type(exc).__name__}: {_one_line(exc)})") from None
    if not all(np.isfinite(spacing)) or (affine is not None and not np.isfinite(affine).all()):
        raise FileFormatError(f"{p} has a corrupt NIfTI header: non-finite voxel sizes {spacing} or affine")

    metadata = {
        "Format": "NIfTI-2" if isinstance(img, (nib.Nifti2Image, nib.Nifti2Pair)) else "NIfTI-1",
        "DataType": str(img.get_data_dtype()),
        "Shape": "x".join(str(s) for s in shape),
        "SpatialUnits": str(space_unit),
    }
    if affine is not None:
        metadata["Affine"] = repr(np.round(affine, 6).tolist())
        if axcodes is not None:
            metadata["AxisCodes"] = axcodes
    identifiers = {}
    for field in FREE_TEXT:
        if field in header:
            raw = header[field]
            value = raw.item() if hasattr(raw, "item") else raw
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            value = str(value).strip("\x00 ").strip()
            if value:
                identifiers[field] = value
    return Volume(
        torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32)),
        spacing,
        metadata,
        identifiers,
        affine=None if affine is None else tuple(tuple(float(v) for v in row) for row in affine),
        channels=channels,
        format="NIfTI",
        source=str(p),
    )


def write_nifti(values: np.ndarray, like: Volume, path: PathLike) -> pathlib.Path:
    """Write ``values`` on the grid of the NIfTI image ``like`` came from, with its affine and header.

    The written image opens aligned with its source in 3D Slicer, ITK-SNAP or FSLeyes: voxel
    ``(i, j, k)`` of ``values`` lies at the same world coordinate as voxel ``(i, j, k)`` of the
    source. The source header is copied (orientation codes, units, ``qform``/``sform``); the data
    type becomes float32 with no scaling, and its free-text fields (:data:`FREE_TEXT`) and header
    extensions (a DICOM header, an AFNI history) are cleared: they may name a patient.

    Parameters
    ----------
    values : numpy.ndarray
        Shape ``like.spatial_shape``.
    like : Volume
        A volume read from NIfTI (:func:`load_nifti`) or from DICOM; for DICOM the volume's RAS
        affine (:attr:`Volume.affine`) is used with a fresh header.
    path : str or os.PathLike
        ``.nii`` or ``.nii.gz``.

    Raises
    ------
    InputError
        ``values`` does not have the source's spatial shape, or the source has no affine.
    """
    import nibabel as nib

    from medlens.errors import InputError

    values = np.asarray(values, dtype=np.float32)
    if tuple(values.shape) != tuple(like.spatial_shape):
        raise InputError(f"map of shape {values.shape} does not match the image's grid {like.spatial_shape}")
    path = pathlib.Path(path)
    if like.format == "NIfTI" and like.source:
        src = nib.load(like.source)
        header = src.header.copy()
        header.set_data_dtype(np.float32)
        for field in FREE_TEXT:
            if field in header:
                header[field] = b""
        header.extensions.clear()
        kind = nib.Nifti2Image if isinstance(src, (nib.Nifti2Image, nib.Nifti2Pair)) else nib.Nifti1Image
        img = kind(values.reshape(src.shape[: values.ndim] if values.ndim == len(src.shape) else values.shape),
                   src.affine, header=header)
        img.header.set_slope_inter(1.0, 0.0)
    elif like.affine is not None:
        data = values if values.ndim == 3 else values[..., None]
        img = nib.Nifti1Image(data, np.asarray(like.affine, dtype=np.float64))
        img.header.set_xyzt_units("mm")
    else:
        raise InputError("the image has no affine (a picture file): NIfTI output needs a NIfTI or DICOM source")
    nib.save(img, str(path))
    return path
