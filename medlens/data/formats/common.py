"""Shared pieces of the readers: the :class:`Volume` record, one-line errors, model-input helper.

Every reader in :mod:`medlens.data` raises a :class:`~medlens.errors.MedlensError` subclass with a
one-line message that names the file and the problem:

* :class:`~medlens.errors.FileFormatError`: a file is missing, corrupt, of the wrong format or
  lacks what the reader needs (a split, pixel data, ...).
* :class:`~medlens.errors.InputError`: the arrays in a readable file are unusable (NaN/inf, wrong
  shape, ...), or an argument value is invalid.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pathlib
from dataclasses import dataclass, field
from typing import Any, Callable, TypeVar, Union

import numpy as np
import torch

from medlens.data.formats.orientation import PLANE_NAMES, plane_names
from medlens.errors import FileFormatError, InputError, MedlensError

PathLike = Union[str, "os.PathLike[str]"]

def _one_line(exc: BaseException) -> str:
    """An exception's text on one line, without advice that does not apply to medlens."""
    text = " ".join(str(exc).split())
    for advice in (" Use force=True to force reading.",):
        text = text.replace(advice, "")
    return text or type(exc).__name__


_Reader = TypeVar("_Reader", bound=Callable[..., Any])


def one_line_errors(what: str) -> Callable[[_Reader], _Reader]:
    """Decorator of a reader: whatever a library raises on a hostile or corrupt file that the
    reader did not turn into a :class:`~medlens.errors.MedlensError` itself (a header value that
    is not a number, an unknown code, ...) becomes one :class:`FileFormatError` line naming the
    file. ``MemoryError`` is left alone: it is not a property of the file."""

    def wrap(reader: _Reader) -> _Reader:
        @functools.wraps(reader)
        def read(path: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                return reader(path, *args, **kwargs)
            except MedlensError as exc:
                text = str(exc)
                if "\n" in text or "\r" in text:  # a header value quoted in the message held a newline
                    raise type(exc)(" ".join(text.split())) from exc
                raise
            except MemoryError:
                raise
            except Exception as exc:  # noqa: BLE001 - the safety net of every reader
                where = path if isinstance(path, (str, os.PathLike)) else f"{what} input"
                raise FileFormatError(f"{where} is a corrupt {what} file ({type(exc).__name__}: {_one_line(exc)})") from exc

        return read  # type: ignore[return-value]

    return wrap


@contextlib.contextmanager
def silenced_stdout():
    """Discard what a C library prints to the process's standard output inside the block
    (pyedflib prints ``filesize 1123 != ...`` in front of the error medlens then raises, on the
    same line). The C buffer is flushed before the descriptor is restored."""
    import ctypes
    import sys

    try:
        sys.stdout.flush()
        saved = os.dup(1)
    except (OSError, ValueError, AttributeError):  # no real descriptor 1 (an embedding host)
        yield
        return
    libc = ctypes.CDLL(None)
    try:
        with open(os.devnull, "wb") as sink:
            os.dup2(sink.fileno(), 1)
            try:
                yield
            finally:
                libc.fflush(None)
    finally:
        os.dup2(saved, 1)
        os.close(saved)


def _existing_file(path: PathLike, what: str) -> pathlib.Path:
    p = pathlib.Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise FileFormatError(f"{what} not found: {p}")
    if p.is_dir():
        raise FileFormatError(f"{p} is a folder, expected a {what}")
    return p


def colour_channels_first(arr: np.ndarray) -> tuple[np.ndarray, int, str]:
    """A colour frame ``(H, W, 3)`` as the readers return it: ``(3, H, W)`` with 3 channels and
    "RGB", or, when its three channels are equal, the grey ``(H, W)`` with 1 channel and
    "grey stored as RGB"."""
    if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 0], arr[..., 2]):
        return arr[..., 0], 1, "grey stored as RGB"
    return np.moveaxis(arr, -1, 0), 3, "RGB"


def _check_finite(arr: np.ndarray, where: str) -> None:
    if arr.dtype.kind in "fc":
        bad = ~np.isfinite(arr)
        if bad.any():
            n_nan = int(np.isnan(arr).sum())
            raise InputError(
                f"{where} holds {n_nan} NaN and {int(bad.sum()) - n_nan} infinite values"
            )



@dataclass(frozen=True)
class Volume:
    """An image or volume read from DICOM, NIfTI, PNG, JPEG or TIFF, with its geometry.

    Attributes
    ----------
    array : torch.Tensor
        ``float32`` in the file's own units, nothing rescaled: Hounsfield units for CT (DICOM
        Rescale Slope/Intercept applied), stored grey levels for PNG/JPEG/TIFF (0..255 for 8 bit,
        0..65535 for 16 bit). Shape ``(*spatial)`` when :attr:`channels` is 1, else
        ``(channels, *spatial)`` (RGB pictures). ``spatial`` is ``(H, W)`` (rows, columns) for an
        image, ``(D, H, W)`` for a DICOM series (slices ordered along the slice normal) or a
        multi-frame DICOM / multi-page TIFF, and the stored voxel axes ``(I, J, K)`` of a NIfTI
        image (nothing reoriented).
    spacing : tuple of float
        Pixel or voxel size in millimetres, one entry per spatial axis, in the same order
        (1.0 where the file does not say).
    metadata : dict of str to str
        Non-identifying acquisition information (DICOM keywords such as ``Modality``,
        ``PhotometricInterpretation``, ``RescaleSlope``; for NIfTI the format, data type, affine
        and axis codes; for pictures ``BitDepth`` and ``MaxValue``).
    identifiers : dict of str to str
        What identifies a patient, a study or an institution (``PatientName``, ``PatientID``,
        ``AccessionNumber``, UIDs, NIfTI ``descrip``, ...), kept apart so that reports leave them
        out unless asked to show them. Never shown in the repr.
    affine : tuple of tuple of float, optional
        ``4 x 4`` map from array indices (spatial axes, in order; a 2-D image gets a third index
        0) to world coordinates in millimetres, in the RAS+ convention of nibabel: the NIfTI
        file's own affine, or for DICOM the one built from ``ImagePositionPatient``,
        ``ImageOrientationPatient`` and the spacing (LPS flipped to RAS). ``None`` for pictures.
    channels : int
        1 for grey images; 3 (or 4) for colour pictures, whose channel axis leads :attr:`array`.
    format : str
        ``"DICOM"``, ``"NIfTI"``, ``"PNG"``, ``"JPEG"``, ``"TIFF"`` or ``"NumPy"``.
    source : str
        The path read (a file, or the folder of a DICOM series). Not shown in the repr.
    geometry_warnings : tuple of str
        What the volume's grid gets wrong about the patient, one sentence each (a DICOM series
        with a missing slice, uneven spacing or gantry tilt:
        :mod:`~medlens.data.formats.slice_geometry`); every output that reports on the case
        lists them.
    """

    array: torch.Tensor
    spacing: tuple[float, ...]
    metadata: dict[str, str]
    identifiers: dict[str, str] = field(default_factory=dict)
    affine: tuple[tuple[float, ...], ...] | None = None
    channels: int = 1
    format: str = ""
    source: str = field(default="", repr=False)
    geometry_warnings: tuple[str, ...] = ()

    @property
    def shape(self) -> torch.Size:
        return self.array.shape

    @property
    def spatial_shape(self) -> tuple[int, ...]:
        """The spatial axes of :attr:`array` (without the colour channel axis)."""
        return tuple(self.array.shape[1:] if self.channels > 1 else self.array.shape)

    @property
    def plane_names(self) -> tuple[str, str, str]:
        """The anatomical plane a slice through each of a volume's three axes shows.

        A DICOM series is ``(slices, rows, columns)`` but a NIfTI image keeps its stored voxel
        axes, whose first axis usually runs left-right: slicing it shows a sagittal plane, not
        an axial one. Named from :attr:`affine` (the world axis each voxel axis runs along most:
        R/L sagittal, A/P coronal, S/I axial; :func:`medlens.data.formats.orientation.plane_names`);
        without a usable affine, slices along the first axis are called axial, as a DICOM series' are.
        """
        if len(self.spatial_shape) != 3:
            return PLANE_NAMES
        return plane_names(self.affine)

    def __repr__(self) -> str:  # no identifiers, no path in the repr: it ends up in logs
        return (
            f"Volume(shape={tuple(self.array.shape)}, spacing={self.spacing}, "
            f"format={self.format or self.metadata.get('Format', '?')!r}, "
            f"modality={self.metadata.get('Modality', self.metadata.get('Format', '?'))!r})"
        )


# --------------------------------------------------------------------------------------------
# Model input
# --------------------------------------------------------------------------------------------


def to_model_input(
    volume_or_array: Volume | torch.Tensor | np.ndarray, *, spatial_dims: int
) -> torch.Tensor:
    """Add batch and channel axes to one image, signal or volume.

    Parameters
    ----------
    volume_or_array : Volume, torch.Tensor or numpy.ndarray
        Shape ``(*spatial)`` with ``len(spatial) == spatial_dims``: ``(L,)``, ``(H, W)`` or
        ``(D, H, W)``.
    spatial_dims : {1, 2, 3}
        Number of spatial axes.

    Returns
    -------
    torch.Tensor
        float32 of shape ``(1, 1, *spatial)``. Shares memory with a float32 contiguous tensor
        input (clone it before modifying it in place).

    Raises
    ------
    InputError
        ``spatial_dims`` not in 1..3, wrong number of axes, non-numeric data, NaN/inf values.
    """
    if spatial_dims not in (1, 2, 3):
        raise InputError(f"spatial_dims must be 1, 2 or 3, got {spatial_dims!r}")
    data = volume_or_array.array if isinstance(volume_or_array, Volume) else volume_or_array
    if isinstance(data, np.ndarray):
        if data.dtype.kind not in "biuf":
            raise InputError(f"expected a numeric array, got dtype {data.dtype}")
        data = torch.from_numpy(np.ascontiguousarray(data))
    if not isinstance(data, torch.Tensor):
        raise InputError(
            f"expected a Volume, torch.Tensor or numpy array, got {type(volume_or_array).__name__}"
        )
    if data.is_complex():
        raise InputError(f"expected a real-valued array, got dtype {data.dtype}")
    if data.ndim != spatial_dims:
        raise InputError(
            f"expected a {spatial_dims}-D array for spatial_dims={spatial_dims}, got shape "
            f"{tuple(data.shape)}"
        )
    out = data.to(torch.float32).reshape(1, 1, *data.shape)
    if not bool(torch.isfinite(out).all()):
        raise InputError(f"input of shape {tuple(data.shape)} holds NaN or infinite values")
    return out
