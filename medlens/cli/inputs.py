"""Turn a file named on the command line into one model input."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F

from medlens.errors import FileFormatError, InputError


@dataclass
class Case:
    """One input ready for the model, with what is known about it."""

    x: torch.Tensor  # (1, C, *spatial)
    label: int | None
    source: str
    note: str = ""
    native: torch.Tensor | None = None  # the array as read, before scaling and resizing (case report)
    spacing: tuple[float, ...] | None = None  # its pixel / voxel size in mm, when the file says
    metadata: dict[str, str] = field(default_factory=dict)  # non-identifying header fields


def _fit(array: torch.Tensor, shape: Sequence[int] | None) -> tuple[torch.Tensor, str]:
    """Scale intensities to [0, 1] and resize ``(*spatial)`` to the model's input shape."""
    note = ""
    if shape is None:
        return array[None, None].float(), note
    spatial = tuple(shape[1:])
    if array.ndim == len(spatial) + 1 and len(spatial) == 2:
        mid = array.shape[0] // 2
        array = array[mid]
        note = f"middle slice {mid} of the volume; "
    if array.ndim != len(spatial):
        raise InputError(f"the file holds a {array.ndim}D array but the model expects {len(spatial)}D inputs of shape {tuple(shape)}")
    lo, hi = float(array.min()), float(array.max())
    array = (array.float() - lo) / (hi - lo if hi > lo else 1.0)
    x = array[None, None]
    if tuple(array.shape) != spatial:
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[len(spatial)]
        x = F.interpolate(x, size=spatial, mode=mode, align_corners=False)
        note += f"min-max scaled and resized from {tuple(array.shape)} to {spatial}"
    else:
        note += "min-max scaled to [0, 1]"
    return x.expand(1, shape[0], *spatial).contiguous(), note


def load_case(path: str, *, index: int = 0, split: str = "test", input_shape: Sequence[int] | None = None) -> Case:
    """Load case ``index`` of an npz data set, or a DICOM file/folder, NIfTI or ``.npy`` file."""
    from medlens.data import BUNDLED, load_dataset, load_dicom, load_nifti

    p = Path(path)
    name = p.name.lower()
    if path in BUNDLED or name.endswith(".npz"):
        data = load_dataset(path, split)
        if not 0 <= index < len(data):
            raise InputError(f"index {index} is out of range: {data.name} has {len(data)} cases (0..{len(data) - 1})")
        return Case(data.inputs[index : index + 1], int(data.labels[index]), f"{data.name}[{index}]")
    if not p.exists():
        raise FileFormatError(f"input {path!r} does not exist")
    spacing, metadata = None, {}
    if name.endswith((".nii", ".nii.gz")):
        volume = load_nifti(p)
        array, source, spacing = volume.array, f"NIfTI {p.name}", volume.spacing
    elif name.endswith(".npy"):
        try:
            array = torch.from_numpy(__import__("numpy").load(p, allow_pickle=False)).float()
        except ValueError as err:
            raise FileFormatError(f"{path!r} is not a readable .npy array: {err}") from err
        source = f"array {p.name}"
        if input_shape is not None and tuple(array.shape) == tuple(input_shape):
            return Case(array[None], None, source)
    else:
        volume = load_dicom(p)
        array, source, spacing, metadata = volume.array, f"DICOM {p.name}", volume.spacing, dict(volume.metadata)
    if not torch.isfinite(array).all():
        raise InputError(f"{path!r} contains NaN or infinite values")
    x, note = _fit(array, input_shape)
    native = array
    if input_shape is not None and array.ndim == len(input_shape[1:]) + 1 and len(input_shape[1:]) == 2:
        native, spacing = array[array.shape[0] // 2], (spacing[1:] if spacing else None)
    return Case(x, None, source, note, native=native, spacing=tuple(spacing) if spacing else None, metadata=metadata)
