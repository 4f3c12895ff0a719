"""The geometry a DICOM series' slice positions give, and what in it a regular grid cannot hold.

A series is stacked into a volume of slices ``origin + k * step``, ``spacing`` millimetres apart
along the slice normal. Three acquisitions break that grid, and each is said (a warning: the
slices themselves are right, the grid between them is not):

* a missing slice: one gap is a whole multiple of the others, so everything past it lies that
  many slices off when the gap is closed;
* uneven spacing (a CT with variable slice distances): no one spacing holds, the median is used;
* gantry tilt: the slices are not stacked along their normal but sheared; the affine keeps the
  shear, while the voxel grid (drawn overlays, a 3D model's input) treats the slices as stacked
  straight, so anatomy moves by the shear times the slice count across the volume.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TOLERANCE = 0.01  # relative spread of the gaps read as rounding in the stored positions
MISSING_TOLERANCE = 0.05  # how close to a whole multiple of the spacing a gap must be to be missing slices
TILT_DEGREES = 0.5  # smaller shears are rounding in the stored positions


class SliceGeometryWarning(UserWarning):
    """A series' slice grid problem, warned by the reader; the record carries it too
    (``geometry_warnings``), so a command that prints the case's result warnings leaves this out."""


@dataclass(frozen=True)
class SliceGeometry:
    """``spacing``: the median distance between slice planes (mm); ``step``: the LPS vector from
    one slice to the next (its component along the normal is ``spacing``); ``problems``: one
    sentence per thing the regular grid gets wrong."""

    spacing: float
    step: np.ndarray
    problems: tuple[str, ...]


def slice_geometry(positions: np.ndarray, normal: np.ndarray) -> SliceGeometry:
    """The geometry of slices at ``positions`` ``(n, 3)`` (LPS mm, in stacking order, ``n >= 2``)
    with unit slice ``normal``."""
    gaps = np.diff(positions @ normal)
    spacing = float(np.median(gaps))
    mean_step = (positions[-1] - positions[0]) / (len(positions) - 1)
    step = mean_step * (spacing / float(mean_step @ normal))  # the mean step's shear, the median's spacing
    problems = []
    missing = _missing_slices(gaps, spacing)
    if missing:
        problems.append(missing)
    elif gaps.max() - gaps.min() > TOLERANCE * spacing:
        problems.append(f"irregular slice spacing ({gaps.min():.3f} to {gaps.max():.3f} mm); using the median "
                        f"{spacing:.3f} mm: the volume's grid is not true to the patient beyond that")
    shear = float(np.linalg.norm(step - spacing * normal))
    tilt = math.degrees(math.atan2(shear, spacing))
    if tilt >= TILT_DEGREES:
        problems.append(f"a gantry tilt of {tilt:.1f} degrees: the slices are sheared {shear:.2f} mm each, "
                        f"{shear * (len(positions) - 1):.0f} mm across the {len(positions)} slices; the affine "
                        "keeps the shear but the voxel grid (overlays, a 3D model's input) stacks the slices "
                        "straight; correct the tilt first (e.g. dcm2niix) for a 3D model")
    return SliceGeometry(spacing, step, tuple(problems))


def _missing_slices(gaps: np.ndarray, spacing: float) -> str | None:
    """The sentence for gaps that are whole multiples (2 or more) of an otherwise regular spacing."""
    ratio = gaps / spacing
    multiple = np.rint(ratio)
    regular = np.abs(gaps - spacing) <= TOLERANCE * spacing
    whole = (multiple >= 2) & (np.abs(ratio - multiple) <= MISSING_TOLERANCE * multiple)
    if len(gaps) < 2 or not whole.any() or not np.all(regular | whole):
        return None
    where = np.flatnonzero(whole)
    count = int((multiple[where] - 1).sum())
    first = int(where[0])
    return (f"{count} slice{'s' if count > 1 else ''} missing (a gap of {gaps[first]:.3f} mm after slice {first + 1} "
            f"where the others are {spacing:.3f} mm): the volume closes the gap, so every slice past it lies "
            f"{gaps[first] - spacing:.3f} mm off in the voxel grid; re-export the complete series")
