"""How to draw a volume's three planes as a radiologist reads them, from its affine.

A volume keeps the axes it was stored with (a NIfTI image's first axis usually runs left-right,
a DICOM series' runs along the slice normal). Drawing those axes unrotated turns the planes: an
axial slice of a RAS NIfTI image comes out with the patient's left at the bottom. :func:`panels`
says, for each plane, which stored axis runs down and which across the picture and whether each
is reversed, so that (radiological convention):

* axial: anterior at the top, the patient's left on the image's right;
* coronal: superior at the top, the patient's left on the image's right;
* sagittal: superior at the top, anterior on the image's left.

Only the drawing changes: the data, the maps written to disk and every index reported stay on
the stored grid (:meth:`Panel.draw` slices the stored array at a stored index).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from medlens.errors import InputError

__all__ = ["PLANE_NAMES", "Panel", "panels", "plane_names", "world_axes"]

#: Plane names of a ``(D, H, W)`` volume without an affine (a DICOM series' order), per axis.
PLANE_NAMES = ("axial", "coronal", "sagittal")

#: The plane a slice across each world axis shows (0: right-left, 1: anterior-posterior, 2: superior-inferior).
_PLANE_ACROSS = {0: "sagittal", 1: "coronal", 2: "axial"}
#: Per plane: the world axes running down and across the picture. Every picture runs towards
#: the negative end of both (posterior or inferior downwards, left or posterior rightwards).
_ROWS_COLS = {"axial": (1, 0), "coronal": (2, 0), "sagittal": (2, 1)}


@dataclass(frozen=True)
class Panel:
    """One plane of a volume as drawn.

    Attributes
    ----------
    name : str
        ``"axial"``, ``"coronal"`` or ``"sagittal"``.
    axis : int
        The stored axis the plane is a slice across (its slice index is a stored index).
    rows, cols : int
        The stored axes running down and across the picture.
    flip_rows, flip_cols : bool
        The picture's first row (column) is the stored axis' last index.
    """

    name: str
    axis: int
    rows: int
    cols: int
    flip_rows: bool = False
    flip_cols: bool = False

    def draw(self, array: np.ndarray, index: int) -> np.ndarray:
        """The ``(rows, cols)`` picture of ``array`` (stored axes) at stored slice ``index``."""
        plane = np.take(np.asarray(array), index, axis=self.axis)  # the other two axes, in stored order
        if self.rows > self.cols:
            plane = plane.T
        if self.flip_rows:
            plane = plane[::-1]
        if self.flip_cols:
            plane = plane[:, ::-1]
        return plane

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "axis": self.axis, "rows": self.rows, "cols": self.cols,
                "flip_rows": self.flip_rows, "flip_cols": self.flip_cols}


def world_axes(affine: Sequence[Sequence[float]] | np.ndarray | None) -> list[tuple[int, int]] | None:
    """Per stored axis, the world axis it runs along (0: R/L, 1: A/P, 2: S/I) and its direction
    (+1: towards R, A or S); nibabel's :func:`~nibabel.orientations.io_orientation`, so that an
    oblique scan gets each world axis once. ``None`` without an affine or with one that does not
    say (non-finite values, a voxel axis going nowhere); :class:`InputError` when it is not 4 x 4."""
    if affine is None:
        return None
    from nibabel.orientations import io_orientation

    try:
        a = np.asarray(affine, dtype=np.float64)
    except (TypeError, ValueError):
        raise InputError(f"an affine must be a 4 x 4 matrix of numbers, got {type(affine).__name__}") from None
    if a.shape != (4, 4):
        raise InputError(f"an affine must be a 4 x 4 matrix, got shape {a.shape}")
    if not np.isfinite(a).all():  # a hostile header's NaN position: the stored axes, drawn as stored
        return None
    ornt = io_orientation(a)
    if not np.isfinite(ornt).all():  # a voxel axis that goes nowhere (a zero column)
        return None
    return [(int(w), int(s)) for w, s in ornt]


def panels(affine: Sequence[Sequence[float]] | np.ndarray | None = None,
           names: Sequence[str] | None = None) -> tuple[Panel, Panel, Panel]:
    """The three planes of a volume, in reading order (axial, coronal, sagittal) when its
    ``affine`` (stored axes to RAS millimetres, :attr:`Volume.affine`) says which is which.

    Without an affine, each stored axis is sliced in turn and drawn unrotated (the order of a
    DICOM series), named by ``names`` (default :data:`PLANE_NAMES`)."""
    axes = world_axes(affine)
    if axes is None:
        labels = tuple(str(n) for n in names) if names is not None else PLANE_NAMES
        return tuple(Panel(labels[k], k, *[a for a in range(3) if a != k]) for k in range(3))  # type: ignore[return-value]
    stored = {world: (axis, sign) for axis, (world, sign) in enumerate(axes)}
    out = []
    for across in (2, 1, 0):
        name = _PLANE_ACROSS[across]
        (rows, row_sign), (cols, col_sign) = (stored[w] for w in _ROWS_COLS[name])
        out.append(Panel(name, stored[across][0], rows, cols, flip_rows=row_sign > 0, flip_cols=col_sign > 0))
    return tuple(out)  # type: ignore[return-value]


def plane_names(affine: Sequence[Sequence[float]] | np.ndarray | None) -> tuple[str, str, str]:
    """The plane a slice across each stored axis shows; :data:`PLANE_NAMES` without an affine."""
    axes = world_axes(affine)
    if axes is None:
        return PLANE_NAMES
    return tuple(_PLANE_ACROSS[w] for w, _s in axes)  # type: ignore[return-value]
