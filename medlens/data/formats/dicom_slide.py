"""Whole-slide microscopy DICOM (VL WSI): the tiles of one pyramid level assembled into its image.

A slide level is stored as tiles, one frame each, of a "total pixel matrix" (PS3.3 C.8.12.4): the
frames are pieces of one 2-D picture, not the slices of a volume. With ``DimensionOrganizationType``
``TILED_FULL`` the tiles fill the matrix row by row (columns fastest); otherwise each frame gives
its place in ``PlanePositionSlideSequence`` (1-based row and column in the matrix).
"""

from __future__ import annotations

import math
import pathlib
from typing import Any

import numpy as np

from medlens.data.formats.limits import check_decoded_size
from medlens.errors import FileFormatError


def is_tiled_slide(ds: Any) -> bool:
    """Whether ``ds`` holds the tiles of a total pixel matrix (a whole-slide image level)."""
    return "TotalPixelMatrixRows" in ds and "TotalPixelMatrixColumns" in ds and int(ds.get("NumberOfFrames", 1) or 1) > 1


def _matrix(ds: Any) -> tuple[int, int]:
    return int(ds.TotalPixelMatrixRows), int(ds.TotalPixelMatrixColumns)


def check_slide_size(ds: Any, p: pathlib.Path, memory_mb: float | None = None) -> None:
    """Refuse, before decoding, a slide whose assembled image exceeds the decoding limit."""
    rows, cols = _matrix(ds)
    samples = int(ds.get("SamplesPerPixel", 1) or 1)
    check_decoded_size(p, (rows, cols, samples), 8, memory_mb=memory_mb, what="pixels",
                       detail=f"a whole-slide image of {rows} x {cols} pixels x {samples} samples (a finer pyramid "
                              "level; give a coarser level's file)")


def _origins(ds: Any, p: pathlib.Path, frames: int, tile: tuple[int, int]) -> list[tuple[int, int]]:
    """Each frame's top-left (row, column) in the total pixel matrix, 0-based."""
    rows, cols = _matrix(ds)
    if str(ds.get("DimensionOrganizationType", "")).upper() == "TILED_FULL":
        planes = int(ds.get("TotalPixelMatrixFocalPlanes", 1) or 1) * int(ds.get("NumberOfOpticalPaths", 1) or 1)
        across, down = math.ceil(cols / tile[1]), math.ceil(rows / tile[0])
        if planes > 1 or frames != across * down:
            raise FileFormatError(
                f"{p} is a whole-slide image with {frames} tiles for {across * down} places ({planes} focal planes or "
                "optical paths): medlens reads one focal plane and optical path per file"
            )
        return [((f // across) * tile[0], (f % across) * tile[1]) for f in range(frames)]
    per_frame = ds.get("PerFrameFunctionalGroupsSequence") or []
    try:
        places = [item.PlanePositionSlideSequence[0] for item in per_frame]
        origins = [(int(pos.RowPositionInTotalImagePixelMatrix) - 1, int(pos.ColumnPositionInTotalImagePixelMatrix) - 1)
                   for pos in places]
    except (AttributeError, IndexError, TypeError, ValueError):
        origins = []
    if len(origins) != frames:
        raise FileFormatError(f"{p} is a whole-slide image whose tiles do not say where they lie "
                              "(no PlanePositionSlideSequence per frame, and not TILED_FULL)")
    return origins


def assemble_tiles(frames: np.ndarray, ds: Any, p: pathlib.Path) -> np.ndarray:
    """The total pixel matrix ``(rows, columns[, samples])`` from tiles ``(F, r, c[, samples])``;
    places no tile covers are 0, tiles reaching past the matrix are cut at its edge."""
    rows, cols = _matrix(ds)
    tile = (int(frames.shape[1]), int(frames.shape[2]))
    out = np.zeros((rows, cols, *frames.shape[3:]), dtype=frames.dtype)
    for frame, (r, c) in zip(frames, _origins(ds, p, len(frames), tile)):
        if r >= rows or c >= cols or r < 0 or c < 0:
            continue
        h, w = min(tile[0], rows - r), min(tile[1], cols - c)
        out[r : r + h, c : c + w] = frame[:h, :w]
    return out
