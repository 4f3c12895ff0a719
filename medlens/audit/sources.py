"""Where the audited cases come from: an npz data set, a bundled name, or scans (a file or a folder).

A :class:`SourceSpec` is a small picklable description; each engine worker opens it itself
(:func:`open_source`) and reads only the cases it is given, so inputs stream from storage to the
workers instead of through the driver. Scans are read exactly as ``medlens explain`` reads them
(:class:`medlens.data.formats.folders.ScanSet`: DICOM series assembled into one case, every case through
the model's preprocessing recipe); a case that cannot be read is reported in
:attr:`Batch.failed` and the others go on.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from medlens.errors import FileFormatError, InputError

__all__ = ["Batch", "Source", "SourceSpec", "open_source"]


@dataclass(frozen=True)
class SourceSpec:
    """Description of a data source.

    Attributes
    ----------
    data : str
        An npz path, a bundled data set name, a scan file, or a folder of scans
        (:func:`medlens.data.formats.folders.scan_cases`: any format :func:`medlens.data.formats.read.read`
        reads, walked recursively, in a stable order).
    split : str
        Split of an npz or bundled data set.
    input_shape : tuple of int or None
        ``(C, *spatial)`` the model expects.
    recipe : dict or None
        Scans: the preprocessing recipe as plain data (``Recipe.to_dict``); ``None``: the one
        :func:`medlens.models.io.model_recipe` gives for ``input_shape``.
    labels : str or None
        Scans: a CSV with columns ``case,label``; without it the scans have no labels.
    class_names : tuple of str
        The model's classes (labels may be given by name).
    """

    data: str
    split: str = "test"
    input_shape: tuple[int, ...] | None = None
    recipe: dict[str, Any] | None = None
    labels: str | None = None
    class_names: tuple[str, ...] = ()

    @property
    def is_dataset(self) -> bool:
        """An npz data set or a bundled name (labels and masks inside), not scans."""
        from medlens.data import BUNDLED

        return self.data in BUNDLED or str(self.data).lower().endswith(".npz")

    def recipe_object(self):
        """The :class:`~medlens.data.recipe.Recipe` applied to scans."""
        from medlens.data.recipe import Recipe
        from medlens.models.io import model_recipe

        meta = {"input_shape": list(self.input_shape)} if self.input_shape is not None else {}
        return model_recipe(meta, Recipe.from_dict(self.recipe) if self.recipe is not None else None)


@dataclass(frozen=True)
class Batch:
    """Cases read from a source: inputs ``(B, C, *spatial)``, labels, masks ``(B, *spatial)`` or None.

    ``failed`` maps the index of each requested case that could not be read to its one-line
    error; ``x``, ``labels``, ``indices`` and ``cases`` hold the others (``x`` is ``None`` when
    none could be read).
    """

    x: torch.Tensor | None
    labels: list[int | None]
    masks: torch.Tensor | None
    indices: list[int]
    cases: list[str]
    failed: dict[int, str] = field(default_factory=dict)


class Source:
    """An opened :class:`SourceSpec`: its case names, and the cases of given indices."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self._dataset = None
        self._scans = None
        if spec.is_dataset:
            from medlens.data import load_dataset

            if spec.labels is not None:
                raise InputError("--labels is for scans: an npz data set carries its own labels")
            self._dataset = load_dataset(spec.data, spec.split)
            n = len(self._dataset)
            self.names = [str(i) for i in range(n)]
            self.has_masks = self._dataset.masks is not None
            self.has_labels = True
            self.class_names = tuple(self._dataset.class_names)
            if spec.input_shape is not None and tuple(self._dataset.inputs.shape[1:]) != tuple(spec.input_shape):
                raise InputError(
                    f"the data has inputs of shape {tuple(self._dataset.inputs.shape[1:])}, "
                    f"the model expects {tuple(spec.input_shape)}"
                )
        else:
            from medlens.data.formats.folders import ScanSet

            self._scans = ScanSet(spec.data, spec.recipe_object(), spec.labels, spec.class_names)
            self.names = list(self._scans.names)
            given = sum(path is not None for path in self._scans.mask_paths)
            if 0 < given < len(self.names):
                raise InputError(f"the labels file gives masks for {given} of {len(self.names)} cases "
                                 "(give every case a mask, or none)")
            self.has_masks = given > 0  # the labels file's mask column
            self.has_labels = any(v is not None for v in self._scans.labels)
            self.class_names = tuple(spec.class_names)

    def __len__(self) -> int:
        return len(self.names)

    def load(self, indices: Sequence[int]) -> Batch:
        """Read the cases at ``indices``."""
        indices = [int(i) for i in indices]
        if self._dataset is not None:
            idx = torch.as_tensor(indices, dtype=torch.long)
            ds = self._dataset
            masks = None if ds.masks is None else ds.masks[idx].reshape(len(idx), *ds.inputs.shape[2:]) > 0.5
            return Batch(ds.inputs[idx], [int(v) for v in ds.labels[idx]], masks, indices, [self.names[i] for i in indices])
        x, kept, failed = self._scans.load(indices)
        masks = self._scans.masks(kept)[:, 0] > 0.5 if self.has_masks and kept else None
        return Batch(x, [self._scans.labels[i] for i in kept], masks, kept, [self.names[i] for i in kept], failed)

    def first_readable(self) -> torch.Tensor:
        """The first case that can be read, ``(1, C, *spatial)``.

        Raises
        ------
        InputError
            Nothing in the source can be read (the message gives the first error).
        """
        failed: dict[int, str] = {}
        for i in range(len(self)):
            batch = self.load([i])
            if batch.x is not None:
                return batch.x
            failed.update(batch.failed)
        first = next(iter(failed.values()), "")
        raise InputError(f"nothing readable in {self.spec.data} ({len(failed)} case(s); first error: {first})")


def open_source(spec: SourceSpec) -> Source:
    """Open a data source; fails with a one-line :class:`~medlens.errors.MedlensError`."""
    if not spec.data:
        raise InputError("no data given")
    p = Path(os.fspath(spec.data))
    if not p.exists() and (spec.is_dataset and p.suffix == ".npz" or not spec.is_dataset):
        if not (not p.suffix and p.with_suffix(".hea").is_file()):
            raise FileFormatError(f"data {spec.data!r} does not exist")
    return Source(spec)
