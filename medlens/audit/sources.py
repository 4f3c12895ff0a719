"""Where the audited cases come from: an npz data set, a bundled name, or a folder of scans.

A :class:`SourceSpec` is a small picklable description; each engine worker opens it itself
(:func:`open_source`) and reads only the cases it is given, so inputs stream from storage to the
workers instead of through the driver.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch

from medlens.core.resize import upsample_to
from medlens.errors import FileFormatError, InputError

__all__ = ["Batch", "SCAN_SUFFIXES", "Source", "SourceSpec", "open_source"]

SCAN_SUFFIXES = (".dcm", ".nii", ".nii.gz", ".npy")


@dataclass(frozen=True)
class SourceSpec:
    """Description of a data source.

    Attributes
    ----------
    data : str
        An npz path, a bundled data set name, or a folder of scans (DICOM ``.dcm``, NIfTI,
        ``.npy``), read recursively in sorted order.
    split : str
        Split of an npz or bundled data set.
    input_shape : tuple of int or None
        ``(C, *spatial)`` the model expects: scans are min-max scaled and resized to it.
    """

    data: str
    split: str = "test"
    input_shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Batch:
    """Cases read from a source: inputs ``(B, C, *spatial)``, labels, masks ``(B, *spatial)`` or None."""

    x: torch.Tensor
    labels: list[int | None]
    masks: torch.Tensor | None
    indices: list[int]
    cases: list[str]


class Source:
    """An opened :class:`SourceSpec`: its case names, and the cases of given indices."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        path = Path(spec.data)
        self._dataset = None
        self._files: list[Path] = []
        if path.is_dir():
            self._files = sorted(
                (p for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(SCAN_SUFFIXES)),
                key=lambda p: p.relative_to(path).as_posix(),
            )
            if not self._files:
                raise FileFormatError(f"folder {spec.data!r} holds no scans ({', '.join(SCAN_SUFFIXES)})")
            self.names = [p.relative_to(path).as_posix() for p in self._files]
            self.has_masks = False
            self.class_names: tuple[str, ...] = ()
        else:
            from medlens.data import load_dataset

            self._dataset = load_dataset(spec.data, spec.split)
            n = len(self._dataset)
            self.names = [str(i) for i in range(n)]
            self.has_masks = self._dataset.masks is not None
            self.class_names = tuple(self._dataset.class_names)
            if spec.input_shape is not None and tuple(self._dataset.inputs.shape[1:]) != tuple(spec.input_shape):
                raise InputError(
                    f"the data has inputs of shape {tuple(self._dataset.inputs.shape[1:])}, "
                    f"the model expects {tuple(spec.input_shape)}"
                )

    def __len__(self) -> int:
        return len(self.names)

    def load(self, indices: Sequence[int]) -> Batch:
        """Read the cases at ``indices``."""
        indices = [int(i) for i in indices]
        names = [self.names[i] for i in indices]
        if self._dataset is not None:
            idx = torch.as_tensor(indices, dtype=torch.long)
            ds = self._dataset
            masks = None if ds.masks is None else ds.masks[idx].reshape(len(idx), *ds.inputs.shape[2:]) > 0.5
            return Batch(ds.inputs[idx], [int(v) for v in ds.labels[idx]], masks, indices, names)
        xs = [self._read_scan(self._files[i]) for i in indices]
        return Batch(torch.cat(xs), [None] * len(xs), None, indices, names)

    def _read_scan(self, path: Path) -> torch.Tensor:
        """One scan as a model input ``(1, C, *spatial)``: min-max scaled, resized to the model."""
        from medlens.data import load_dicom, load_nifti

        name = path.name.lower()
        if name.endswith(".npy"):
            import numpy as np

            try:
                array = torch.from_numpy(np.load(path, allow_pickle=False)).float()
            except ValueError as err:
                raise FileFormatError(f"{path} is not a readable .npy array: {err}") from err
        elif name.endswith((".nii", ".nii.gz")):
            array = load_nifti(path).array.float()
        else:
            array = load_dicom(path).array.float()
        if not torch.isfinite(array).all():
            raise InputError(f"{path} contains NaN or infinite values")
        shape = self.spec.input_shape
        if shape is None:
            return array[None, None]
        if tuple(array.shape) == tuple(shape):
            return array[None]
        spatial = tuple(shape[1:])
        if array.ndim == len(spatial) + 1 and len(spatial) == 2:
            array = array[array.shape[0] // 2]  # the middle slice of a volume for a 2D model
        if array.ndim != len(spatial):
            raise InputError(f"{path} holds a {array.ndim}D array but the model expects inputs of shape {tuple(shape)}")
        lo, hi = float(array.min()), float(array.max())
        array = (array - lo) / (hi - lo if hi > lo else 1.0)
        x = upsample_to(array[None, None], spatial)
        return x.expand(1, shape[0], *spatial).contiguous()


def open_source(spec: SourceSpec) -> Source:
    """Open a data source; fails with a one-line :class:`~medlens.errors.MedlensError`."""
    if not spec.data:
        raise InputError("no data given")
    p = Path(os.fspath(spec.data))
    if not p.exists() and p.suffix in (".npz", ".dcm", ".nii", ".npy"):
        raise FileFormatError(f"data {spec.data!r} does not exist")
    return Source(spec)
