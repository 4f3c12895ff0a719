"""Labelled data sets: the bundled real data, npz archives (MedMNIST layout) and UCR ECG text.

Every loader returns torch tensors. Errors are one line naming the file and the problem
(:class:`~medlens.errors.FileFormatError`, :class:`~medlens.errors.InputError`,
:class:`~medlens.errors.UnknownNameError` for an unknown bundled name or split).
Provenance and licences of the bundled data: ``medlens/data/datasets/bundled/LICENSES.md``.
"""

from __future__ import annotations

import os
import pathlib


from medlens.data.datasets.bundled import (
    BUNDLED,
    BundledDataset,
    bundled_file,
    bundled_path,
)
from medlens.data.datasets.labelled import LabelledSet
from medlens.data.datasets.npz import load_npz
from medlens.data.datasets.ucr import ECG5000_CLASS_NAMES, load_ecg5000
from medlens.data.formats.common import PathLike
from medlens.errors import FileFormatError, UnknownNameError

__all__ = [
    "BUNDLED",
    "BundledDataset",
    "ECG5000_CLASS_NAMES",
    "LabelledSet",
    "bundled_file",
    "bundled_path",
    "load_dataset",
    "load_ecg5000",
    "load_npz",
]


def load_dataset(name_or_path: PathLike, split: str, *, memory_mb: float | None = None) -> LabelledSet:
    """Load one split of a bundled data set or of an ``.npz`` file.

    Parameters
    ----------
    name_or_path : str or os.PathLike
        A bundled data set name (see :data:`BUNDLED`: ``"pneumoniamnist"``, ``"breastmnist"``,
        ``"ecg5000"``; case-insensitive) or the path of an ``.npz`` file in the MedMNIST layout
        (see :func:`load_npz`).
    split : str
        ``"train"``, ``"val"`` or ``"test"`` (``"all"`` too for ``"ecg5000"``); for an npz file,
        any split the file has.

    Returns
    -------
    LabelledSet
        ``inputs`` ``(N, 1, 28, 28)`` float32 in ``[0, 1]`` for the MedMNIST sets,
        ``(N, 1, 140)`` for ECG5000 (binary labels: see :func:`load_ecg5000`).

    Raises
    ------
    UnknownNameError
        Not a bundled name, not an existing file, or an unknown split of a bundled set.
    FileFormatError, InputError
        As :func:`load_npz` / :func:`load_ecg5000`.
    """
    text = os.fspath(name_or_path)
    key = text.lower()
    if key in BUNDLED:
        spec = BUNDLED[key]
        if split not in spec.splits:
            raise UnknownNameError(
                f"unknown split {split!r} of bundled data set {key!r}; splits: "
                f"{', '.join(spec.splits)}"
            )
        if key == "ecg5000":
            return load_ecg5000(split=split)
        with bundled_file(key) as path:
            loaded = load_npz(path, split)
        return LabelledSet(
            loaded.inputs, loaded.labels, loaded.masks, f"{key}/{split}", spec.class_names
        )
    p = pathlib.Path(text).expanduser()
    if p.suffix.lower() == ".npz" or p.exists():
        if p.exists() and not p.is_dir() and p.suffix.lower() != ".npz":
            raise FileFormatError(f"{p} is not an .npz file; load_dataset reads .npz archives")
        return load_npz(p, split, memory_mb=memory_mb)
    raise UnknownNameError(
        f"unknown data set {text!r}: not a bundled data set ({', '.join(sorted(BUNDLED))}) "
        f"nor an existing .npz file"
    )

