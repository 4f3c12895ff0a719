"""The real data shipped inside medlens (PneumoniaMNIST, BreastMNIST, ECG5000) and their files.

Provenance and licences: ``medlens/data/datasets/bundled/LICENSES.md``.
"""

from __future__ import annotations

import pathlib
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, Iterator

from medlens.errors import FileFormatError, UnknownNameError

# --------------------------------------------------------------------------------------------
# Bundled data sets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundledDataset:
    """A data set shipped inside ``medlens/data/datasets/bundled``.

    Attributes
    ----------
    filename : str
        File name inside the ``bundled`` folder.
    class_names : tuple of str
        Class names of the default labelling (binary for ECG5000).
    splits : tuple of str
        Split names accepted by :func:`load_dataset`.
    description : str
        One line: modality, size and source.
    """

    filename: str
    class_names: tuple[str, ...]
    splits: tuple[str, ...]
    description: str


#: Bundled data sets by name. Provenance and licences: ``medlens/data/datasets/bundled/LICENSES.md``.
BUNDLED: dict[str, BundledDataset] = {
    "pneumoniamnist": BundledDataset(
        "pneumoniamnist.npz",
        ("normal", "pneumonia"),
        ("train", "val", "test"),
        "paediatric chest X-ray, 1x28x28, train 2428 / val 270 / test 468 (MedMNIST v2, CC BY 4.0)",
    ),
    "breastmnist": BundledDataset(
        "breastmnist.npz",
        ("malignant", "normal or benign"),
        ("train", "val", "test"),
        "breast ultrasound, 1x28x28, train 546 / val 78 / test 156 (MedMNIST v2, CC BY 4.0)",
    ),
    "ecg5000": BundledDataset(
        "ECG5000_TRAIN.txt",
        ("normal", "abnormal"),
        ("train", "val", "test", "all"),
        "single-lead ECG beats, 1x140, 500 rows split 70/15/15 (UCR archive, PhysioNet BIDMC)",
    ),
}

def _bundled_resource(name: str) -> Any:
    key = str(name).lower()
    filename = BUNDLED[key].filename if key in BUNDLED else str(name)
    ref = resources.files("medlens.data.datasets").joinpath("bundled", filename)
    if key not in BUNDLED and (
        "/" in filename or "\\" in filename or filename.startswith(".") or not ref.is_file()
    ):
        raise UnknownNameError(
            f"unknown bundled data set {name!r}; bundled data sets: {', '.join(sorted(BUNDLED))}"
        )
    if not ref.is_file():
        raise FileFormatError(
            f"bundled file {filename} of data set {key!r} is missing from the medlens installation"
        )
    return ref


@contextmanager
def bundled_file(name: str) -> Iterator[pathlib.Path]:
    """A path to a bundled data file, valid inside the ``with`` block.

    Works from a source checkout, an installed package and a zipped install (where
    :func:`importlib.resources.as_file` makes a temporary copy that is removed when the block
    ends). Nothing is held beyond the block.

    Parameters
    ----------
    name : str
        A key of :data:`BUNDLED` or a file name inside the bundled folder (``"LICENSES.md"``).

    Raises
    ------
    UnknownNameError
        ``name`` is neither a bundled data set nor a bundled file.
    FileFormatError
        The file is listed but missing from the installation.
    """
    with resources.as_file(_bundled_resource(name)) as path:
        yield pathlib.Path(path)


def bundled_path(name: str) -> pathlib.Path:
    """The path of a bundled data file on disk (source checkout or unzipped install).

    Prefer :func:`bundled_file`, which also works from a zipped install.

    Parameters
    ----------
    name : str
        A key of :data:`BUNDLED` (``"pneumoniamnist"``, ``"breastmnist"``, ``"ecg5000"``) or a
        file name inside the bundled folder (e.g. ``"LICENSES.md"``).

    Raises
    ------
    UnknownNameError
        ``name`` is neither a bundled data set nor a bundled file.
    FileFormatError
        The file is listed but missing, or medlens is installed zipped (no file on disk: use
        :func:`bundled_file`).
    """
    ref = _bundled_resource(name)
    if isinstance(ref, pathlib.Path):
        return ref
    raise FileFormatError(
        f"bundled file {name!r} has no path on disk (zipped install); read it with bundled_file()"
    )


