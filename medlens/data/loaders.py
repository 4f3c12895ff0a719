"""Loaders for labelled data sets (npz, UCR text) and medical volumes (DICOM, NIfTI).

Every loader returns torch tensors. Every problem a user can cause raises a
:class:`~medlens.errors.MedlensError` subclass with a one-line message that names the file and the
problem:

* :class:`~medlens.errors.FileFormatError`: a file is missing, corrupt, of the wrong format or
  lacks what the loader needs (a split, pixel data, ...).
* :class:`~medlens.errors.InputError`: the arrays in a readable file are unusable (NaN/inf, wrong
  shape, label count differing from the image count, ...), or an argument value is invalid.
* :class:`~medlens.errors.UnknownNameError`: an unknown bundled data set name or split name.

``pydicom`` and ``nibabel`` are imported inside the functions that need them, so importing
``medlens`` stays fast and works without them.
"""

from __future__ import annotations

import atexit
import contextlib
import math
import os
import pathlib
import re
import warnings
import zipfile
from dataclasses import dataclass
from importlib import resources
from typing import Any, Union

import numpy as np
import torch

from medlens.errors import FileFormatError, InputError, UnknownNameError

PathLike = Union[str, "os.PathLike[str]"]

__all__ = [
    "BUNDLED",
    "BundledDataset",
    "LabelledSet",
    "Volume",
    "bundled_path",
    "load_dataset",
    "load_dicom",
    "load_ecg5000",
    "load_nifti",
    "load_npz",
    "to_model_input",
]


# --------------------------------------------------------------------------------------------
# Result types
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelledSet:
    """One split of a labelled data set.

    Attributes
    ----------
    inputs : torch.Tensor
        ``float32``, shape ``(N, C, *spatial)``: ``(N, C, H, W)`` for images,
        ``(N, C, D, H, W)`` for volumes, ``(N, C, L)`` for signals. uint8 images are scaled to
        ``[0, 1]`` (divided by 255); float images and signals are kept as stored. Token data sets
        are the exception: ``int64`` of shape ``(N, L)``.
    labels : torch.Tensor
        ``int64``, shape ``(N,)``, class indices into :attr:`class_names`.
    masks : torch.Tensor or None
        Ground-truth evidence masks, ``float32`` of shape ``(N, 1, *spatial)`` (same spatial
        shape as :attr:`inputs`), or ``None`` when the data set has none.
    name : str
        ``"<data set>/<split>"``, e.g. ``"pneumoniamnist/test"``.
    class_names : tuple of str
        Name of each class; ``class_names[k]`` names label ``k``.
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor | None
    name: str
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:  # short: tensors can be large
        masks = None if self.masks is None else tuple(self.masks.shape)
        return (
            f"LabelledSet(name={self.name!r}, inputs={tuple(self.inputs.shape)} "
            f"{str(self.inputs.dtype).replace('torch.', '')}, labels={tuple(self.labels.shape)}, "
            f"masks={masks}, class_names={self.class_names!r})"
        )


@dataclass(frozen=True)
class Volume:
    """A medical image read from DICOM or NIfTI.

    Attributes
    ----------
    array : torch.Tensor
        ``float32``. Shape ``(D, H, W)`` for a DICOM series (slices ordered along the slice
        normal, rows, columns), a multi-frame DICOM file or a 3-D NIfTI image (NIfTI voxel axes
        ``i, j, k`` as stored, nothing reoriented); ``(H, W)`` (rows, columns) for a single 2-D
        DICOM image or a 2-D NIfTI image. DICOM values are in modality units (Hounsfield units
        for CT) unless a window was applied, which maps them to ``[0, 1]``.
    spacing : tuple of float
        Voxel size in millimetres, one entry per axis of :attr:`array`, in the same order.
    metadata : dict of str to str
        Non-identifying acquisition information (DICOM keywords such as ``Modality``,
        ``BodyPartExamined``, ``SliceThickness``, ``Rows``, ``Columns``, ``Manufacturer``,
        ``SeriesDescription``; for NIfTI the format, data type, affine and axis codes).
    identifiers : dict of str to str
        Tags that identify a patient, a study or an institution (``PatientName``, ``PatientID``,
        ``PatientBirthDate``, ``AccessionNumber``, ``InstitutionName``, ``StudyDate``, UIDs,
        ...), kept apart so that reports can leave them out unless asked to show them.
    """

    array: torch.Tensor
    spacing: tuple[float, ...]
    metadata: dict[str, str]
    identifiers: dict[str, str]

    @property
    def shape(self) -> torch.Size:
        return self.array.shape

    def __repr__(self) -> str:  # no identifiers in the repr: it ends up in logs
        return (
            f"Volume(shape={tuple(self.array.shape)}, spacing={self.spacing}, "
            f"modality={self.metadata.get('Modality', self.metadata.get('Format', '?'))!r})"
        )


# --------------------------------------------------------------------------------------------
# Bundled data sets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BundledDataset:
    """A data set shipped inside ``medlens/data/bundled``.

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


#: Bundled data sets by name. Provenance and licences: ``medlens/data/bundled/LICENSES.md``.
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

_RESOURCE_FILES = contextlib.ExitStack()
atexit.register(_RESOURCE_FILES.close)


def bundled_path(name: str) -> pathlib.Path:
    """Return the path of a bundled data file.

    Uses :mod:`importlib.resources`, so it works from a source checkout and from an installed
    wheel (a zipped install gets a temporary copy that lives until the interpreter exits).

    Parameters
    ----------
    name : str
        A key of :data:`BUNDLED` (``"pneumoniamnist"``, ``"breastmnist"``, ``"ecg5000"``) or a
        file name inside the bundled folder (e.g. ``"LICENSES.md"``).

    Returns
    -------
    pathlib.Path
        Path of the file on disk.

    Raises
    ------
    UnknownNameError
        ``name`` is neither a bundled data set nor a bundled file.
    FileFormatError
        The file is listed but missing from the installation.
    """
    key = str(name).lower()
    filename = BUNDLED[key].filename if key in BUNDLED else str(name)
    ref = resources.files("medlens.data").joinpath("bundled", filename)
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
    if isinstance(ref, pathlib.Path):
        return ref
    return pathlib.Path(_RESOURCE_FILES.enter_context(resources.as_file(ref)))


# --------------------------------------------------------------------------------------------
# npz (MedMNIST layout)
# --------------------------------------------------------------------------------------------

_INPUT_KINDS = ("images", "signals", "tokens")
_SPLIT_KEY = re.compile(r"^(.+)_(images|signals|tokens)$")


def _one_line(exc: BaseException) -> str:
    """An exception's text on one line, without advice that does not apply to medlens."""
    text = " ".join(str(exc).split())
    for advice in (" Use force=True to force reading.",):
        text = text.replace(advice, "")
    return text or type(exc).__name__


def _existing_file(path: PathLike, what: str) -> pathlib.Path:
    p = pathlib.Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise FileFormatError(f"{what} not found: {p}")
    if p.is_dir():
        raise FileFormatError(f"{p} is a folder, expected a {what}")
    return p


def _check_finite(arr: np.ndarray, where: str) -> None:
    if arr.dtype.kind in "fc":
        bad = ~np.isfinite(arr)
        if bad.any():
            n_nan = int(np.isnan(arr).sum())
            raise InputError(
                f"{where} holds {n_nan} NaN and {int(bad.sum()) - n_nan} infinite values"
            )


def _as_labels(raw: np.ndarray, n: int, where: str) -> torch.Tensor:
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = raw[:, 0]
    if raw.ndim != 1:
        raise InputError(
            f"{where} has shape {tuple(raw.shape)}; expected (N,) or (N, 1) class indices "
            f"(multi-label arrays are not supported)"
        )
    if raw.dtype.kind == "b":
        raw = raw.astype(np.int64)
    if raw.dtype.kind not in "iuf":
        raise InputError(f"{where} has dtype {raw.dtype}; expected integer class indices")
    _check_finite(raw, where)
    if raw.dtype.kind == "f" and raw.size and not np.all(raw == np.round(raw)):
        raise InputError(f"{where} holds non-integer values; expected integer class indices")
    if raw.size and raw.min() < 0:
        raise InputError(f"{where} holds negative label {raw.min()}; expected indices >= 0")
    if raw.shape[0] != n:
        raise InputError(f"{where} holds {raw.shape[0]} labels but there are {n} inputs")
    return torch.from_numpy(raw.astype(np.int64))


def _images_to_nchw(arr: np.ndarray, spatial_dims: int | None, where: str) -> np.ndarray:
    """(N,H,W) | (N,H,W,C) | (N,D,H,W) | (N,D,H,W,C) -> channels-first."""
    nd = arr.ndim
    if spatial_dims not in (None, 2, 3):
        raise InputError(f"{where}: spatial_dims must be 2 or 3, got {spatial_dims}")
    if nd == 3 and spatial_dims != 3:
        return arr[:, None]
    if nd == 4:
        if spatial_dims == 3 or (spatial_dims is None and arr.shape[-1] not in (1, 3)):
            return arr[:, None]
        return np.moveaxis(arr, -1, 1)
    if nd == 5 and spatial_dims == 3:
        return np.moveaxis(arr, -1, 1)
    raise InputError(
        f"{where} has shape {tuple(arr.shape)}; expected (N, H, W), (N, H, W, C) with C in (1, 3), "
        f"(N, D, H, W), or with spatial_dims=3 (N, D, H, W[, C])"
    )


def _as_masks(raw: np.ndarray, n: int, spatial: tuple[int, ...], where: str) -> torch.Tensor:
    if raw.dtype.kind not in "biuf":
        raise InputError(f"{where} has dtype {raw.dtype}; expected bool or numeric masks")
    _check_finite(raw, where)
    if tuple(raw.shape) == (n, *spatial):
        raw = raw[:, None]
    if tuple(raw.shape) != (n, 1, *spatial):
        raise InputError(
            f"{where} has shape {tuple(raw.shape)}; expected {(n, 1, *spatial)} or {(n, *spatial)} "
            f"to match the inputs"
        )
    return torch.from_numpy(np.ascontiguousarray(raw, dtype=np.float32))


def _available_splits(keys: list[str]) -> list[str]:
    return sorted({m.group(1) for k in keys if (m := _SPLIT_KEY.match(k))})


def load_npz(path: PathLike, split: str) -> LabelledSet:
    """Load one split of a data set stored as ``.npz`` in the MedMNIST layout.

    Keys read for split ``s``:

    * inputs, exactly one of

      - ``s_images``: ``(N, H, W)`` -> ``(N, 1, H, W)``; ``(N, H, W, C)`` with ``C`` in
        ``(1, 3)`` -> ``(N, C, H, W)``; ``(N, D, H, W)`` with ``D`` ... ``W`` not ending in 1 or
        3, or any 4-D array when the file has ``spatial_dims = 3`` -> ``(N, 1, D, H, W)``;
        ``(N, D, H, W, C)`` with ``spatial_dims = 3`` -> ``(N, C, D, H, W)``. uint8 images are
        divided by 255; other dtypes are converted to float32 without rescaling.
      - ``s_signals``: ``(N, C, L)``, converted to float32 without rescaling.
      - ``s_tokens``: ``(N, L)`` integer token ids, returned as int64 ``(N, L)``.

    * ``s_labels``: ``(N,)`` or ``(N, 1)`` integer class indices -> int64 ``(N,)``.
    * ``s_masks`` (optional): ground-truth evidence masks, ``(N, 1, *spatial)`` or
      ``(N, *spatial)`` -> float32 ``(N, 1, *spatial)``.
    * ``class_names`` (optional, shared by all splits): array of str. Without it the classes are
      named ``"0"``, ``"1"``, ... up to the largest label.
    * ``spatial_dims`` (optional, shared): ``2`` or ``3``, disambiguates 4-D image arrays.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file. Nothing is unpickled (``allow_pickle=False``).
    split : str
        Split name, e.g. ``"train"``, ``"val"`` or ``"test"``.

    Returns
    -------
    LabelledSet
        Named ``"<file stem>/<split>"``.

    Raises
    ------
    FileFormatError
        The file is missing, not an npz archive, or lacks the split's inputs or labels (the
        message lists the splits the file has).
    InputError
        NaN/inf values, label count different from the input count, bad shapes or dtypes.
    """
    p = _existing_file(path, "npz file")
    try:
        with open(p, "rb") as fh:
            magic = fh.read(6)
    except OSError as exc:
        raise FileFormatError(f"cannot read {p}: {_one_line(exc)}") from exc
    if magic == b"\x93NUMPY":
        raise FileFormatError(f"{p} holds a single .npy array, not an .npz archive of named arrays")
    if not magic.startswith(b"PK"):
        raise FileFormatError(f"{p} is not a valid .npz archive (not a zip file)")
    try:
        archive = np.load(p, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise FileFormatError(f"{p} is not a valid .npz archive ({_one_line(exc)})") from exc
    with archive as data:
        try:
            return _read_npz_split(p, data, split)
        except (InputError, FileFormatError, UnknownNameError):
            raise
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise FileFormatError(
                    f"{p} holds object (pickled) arrays; medlens loads numeric and str arrays only"
                ) from exc
            reason = _one_line(exc)
            raise FileFormatError(f"{p} is corrupt: cannot read its arrays ({reason})") from exc
        except (zipfile.BadZipFile, EOFError, OSError) as exc:
            reason = _one_line(exc)
            raise FileFormatError(f"{p} is corrupt: cannot read its arrays ({reason})") from exc


def _read_npz_split(p: pathlib.Path, data: Any, split: str) -> LabelledSet:
    keys = list(data.files)
    present = [kind for kind in _INPUT_KINDS if f"{split}_{kind}" in keys]
    if not present:
        splits = _available_splits(keys)
        have = ", ".join(splits) if splits else "none (no <split>_images/_signals/_tokens keys)"
        raise FileFormatError(f"{p} has no split {split!r}; available splits: {have}")
    if len(present) > 1:
        raise FileFormatError(
            f"{p} has several input arrays for split {split!r} "
            f"({', '.join(f'{split}_{k}' for k in present)}); keep one"
        )
    kind = present[0]
    key = f"{split}_{kind}"
    where = f"{p.name}[{key!r}]"
    if f"{split}_labels" not in keys:
        raise FileFormatError(f"{p} has {key} but no {split}_labels array")

    spatial_dims = None
    if "spatial_dims" in keys:
        sd = data["spatial_dims"]
        if sd.size != 1 or sd.dtype.kind not in "iuf":
            raise InputError(f"{p.name}['spatial_dims'] must be a single number, got {sd!r}")
        spatial_dims = int(sd.reshape(-1)[0])

    raw = data[key]
    if raw.dtype.kind not in "biuf":
        raise InputError(f"{where} has dtype {raw.dtype}; expected a numeric array")
    if raw.ndim < 1:
        raise InputError(f"{where} is a scalar; expected one row per sample")
    _check_finite(raw, where)
    if kind == "images":
        scaled = raw.astype(np.float32) / np.float32(255.0) if raw.dtype == np.uint8 else raw
        inputs = torch.from_numpy(
            np.ascontiguousarray(_images_to_nchw(scaled, spatial_dims, where), dtype=np.float32)
        )
        spatial = tuple(inputs.shape[2:])
    elif kind == "signals":
        if raw.ndim != 3:
            raise InputError(f"{where} has shape {tuple(raw.shape)}; expected (N, C, L)")
        inputs = torch.from_numpy(np.ascontiguousarray(raw, dtype=np.float32))
        spatial = tuple(inputs.shape[2:])
    else:
        if raw.ndim != 2:
            raise InputError(f"{where} has shape {tuple(raw.shape)}; expected (N, L) token ids")
        if raw.dtype.kind not in "iu":
            raise InputError(f"{where} has dtype {raw.dtype}; token ids must be integers")
        inputs = torch.from_numpy(np.ascontiguousarray(raw, dtype=np.int64))
        spatial = tuple(inputs.shape[1:])
    n = int(inputs.shape[0])

    labels = _as_labels(data[f"{split}_labels"], n, f"{p.name}['{split}_labels']")

    masks = None
    if f"{split}_masks" in keys:
        masks = _as_masks(data[f"{split}_masks"], n, spatial, f"{p.name}['{split}_masks']")

    if "class_names" in keys:
        names_arr = data["class_names"]
        if names_arr.dtype.kind not in "US" or names_arr.ndim != 1:
            raise InputError(
                f"{p.name}['class_names'] must be a 1-D array of str, got dtype {names_arr.dtype} "
                f"shape {tuple(names_arr.shape)}"
            )
        class_names = tuple(
            v.decode() if isinstance(v, bytes) else str(v) for v in names_arr.tolist()
        )
        if n and int(labels.max()) >= len(class_names):
            raise InputError(
                f"{p.name}['{split}_labels'] holds label {int(labels.max())} but class_names "
                f"names only {len(class_names)} classes"
            )
    else:
        n_classes = int(labels.max()) + 1 if n else 0
        class_names = tuple(str(k) for k in range(n_classes))

    return LabelledSet(inputs, labels, masks, f"{p.stem}/{split}", class_names)


def load_dataset(name_or_path: PathLike, split: str) -> LabelledSet:
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
        loaded = load_npz(bundled_path(key), split)
        return LabelledSet(
            loaded.inputs, loaded.labels, loaded.masks, f"{key}/{split}", spec.class_names
        )
    p = pathlib.Path(text).expanduser()
    if p.suffix.lower() == ".npz" or p.exists():
        if p.exists() and not p.is_dir() and p.suffix.lower() != ".npz":
            raise FileFormatError(f"{p} is not an .npz file; load_dataset reads .npz archives")
        return load_npz(p, split)
    raise UnknownNameError(
        f"unknown data set {text!r}: not a bundled data set ({', '.join(sorted(BUNDLED))}) "
        f"nor an existing .npz file"
    )


# --------------------------------------------------------------------------------------------
# ECG5000 (UCR text format)
# --------------------------------------------------------------------------------------------

ECG5000_CLASS_NAMES: tuple[str, ...] = (
    "normal",
    "R-on-T premature ventricular contraction",
    "premature ventricular contraction",
    "supraventricular premature beat",
    "unclassified beat",
)

_SPLITS = ("train", "val", "test")


def _read_ucr(p: pathlib.Path) -> tuple[np.ndarray, np.ndarray]:
    """Parse a UCR text file -> (classes float64 (N,), signals float64 (N, L))."""
    try:
        text = p.read_text(encoding="ascii")
    except UnicodeDecodeError as exc:
        raise FileFormatError(
            f"{p} is not a UCR text file (non-ASCII byte at offset {exc.start})"
        ) from exc
    except OSError as exc:
        raise FileFormatError(f"cannot read {p}: {_one_line(exc)}") from exc
    rows: list[np.ndarray] = []
    first_line = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        tokens = line.replace(",", " ").split()
        try:
            row = np.array([float(t) for t in tokens], dtype=np.float64)
        except ValueError:
            bad = next(t for t in tokens if not _is_float(t))
            raise FileFormatError(
                f"{p} line {lineno}: cannot parse {bad[:30]!r} as a number"
            ) from None
        if not rows:
            first_line = lineno
            if row.size < 2:
                raise FileFormatError(
                    f"{p} line {lineno} has {row.size} value; expected a class and a signal"
                )
        elif row.size != rows[0].size:
            raise FileFormatError(
                f"{p} line {lineno} has {row.size} values but line {first_line} has "
                f"{rows[0].size}; all rows must have the same length"
            )
        if not np.all(np.isfinite(row)):
            raise InputError(f"{p} line {lineno} holds NaN or infinite values")
        rows.append(row)
    if not rows:
        raise FileFormatError(f"{p} holds no data rows")
    table = np.stack(rows)
    return table[:, 0], table[:, 1:]


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def _stratified_split(
    strata: np.ndarray, fractions: tuple[float, float, float], seed: int
) -> dict[str, np.ndarray]:
    """Split row indices per stratum by the largest-remainder method; indices sorted."""
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in _SPLITS}
    frac = np.asarray(fractions, dtype=np.float64)
    for value in np.unique(strata):
        idx = np.flatnonzero(strata == value)
        idx = idx[rng.permutation(idx.size)]
        want = frac * idx.size
        counts = np.floor(want).astype(np.int64)
        left = idx.size - int(counts.sum())
        order = np.argsort(-(want - counts), kind="stable")
        counts[order[:left]] += 1
        start = 0
        for name, c in zip(_SPLITS, counts, strict=True):
            parts[name].append(idx[start : start + c])
            start += c
    return {s: np.sort(np.concatenate(v)) for s, v in parts.items()}


def load_ecg5000(
    path: PathLike | None = None,
    *,
    binary: bool = True,
    split: str = "train",
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.7, 0.15, 0.15),
) -> LabelledSet:
    """Load ECG5000 heartbeats (UCR text format) and return one split.

    The UCR text format has one beat per line: whitespace-separated floats, column 0 the class
    (1..5), columns 1.. the signal (140 samples for ECG5000). Only the UCR *TRAIN* file (500
    beats) is bundled, so it is split here into train / val / test: deterministically for a given
    ``seed``, stratified by the five UCR classes (so the splits are the same rows whether
    ``binary`` is true or not), each class divided by ``fractions`` with largest-remainder
    rounding. Rows keep their file order within a split.

    Parameters
    ----------
    path : str or os.PathLike, optional
        A UCR ECG5000 text file; default the bundled ``ECG5000_TRAIN.txt``.
    binary : bool, default True
        ``True``: label 0 = normal (class 1), 1 = abnormal (classes 2..5), class names
        ``("normal", "abnormal")``. ``False``: label = class - 1, with the five UCR class names
        (:data:`ECG5000_CLASS_NAMES`).
    split : {"train", "val", "test", "all"}, default "train"
        Which part to return; ``"all"`` returns every row in file order.
    seed : int, default 0
        Seed of the split.
    fractions : tuple of 3 float, default (0.7, 0.15, 0.15)
        Fractions of train, val and test; non-negative, summing to 1.

    Returns
    -------
    LabelledSet
        ``inputs`` float32 ``(N, 1, L)`` (``L = 140``) as stored, ``labels`` int64 ``(N,)``,
        ``masks`` None, named ``"ecg5000/<split>"``.

    Raises
    ------
    FileFormatError
        Missing file, unparsable line (the message gives the line number), rows of different
        lengths, a class outside 1..5.
    InputError
        NaN/inf values; invalid ``fractions``.
    UnknownNameError
        Unknown ``split``.
    """
    if split not in (*_SPLITS, "all"):
        raise UnknownNameError(f"unknown ECG5000 split {split!r}; splits: train, val, test, all")
    frac = tuple(float(f) for f in fractions)
    if len(frac) != 3 or any(not math.isfinite(f) or f < 0 for f in frac):
        raise InputError(f"fractions must be 3 non-negative numbers, got {fractions!r}")
    if abs(sum(frac) - 1.0) > 1e-6:
        raise InputError(f"fractions must sum to 1, got {fractions!r} (sum {sum(frac):g})")

    p = bundled_path("ecg5000") if path is None else _existing_file(path, "ECG5000 text file")
    classes, signals = _read_ucr(p)
    bad = (classes != np.round(classes)) | (classes < 1) | (classes > 5)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise FileFormatError(
            f"{p}: data row {row + 1} has class {classes[row]:g}; ECG5000 classes are 1..5"
        )
    fine = classes.astype(np.int64) - 1

    if split == "all":
        rows = np.arange(fine.size)
    else:
        rows = _stratified_split(fine, frac, int(seed))[split]

    if binary:
        labels = (fine[rows] != 0).astype(np.int64)
        class_names: tuple[str, ...] = ("normal", "abnormal")
    else:
        labels = fine[rows]
        class_names = ECG5000_CLASS_NAMES
    inputs = torch.from_numpy(np.ascontiguousarray(signals[rows, None, :], dtype=np.float32))
    return LabelledSet(inputs, torch.from_numpy(labels), None, f"ecg5000/{split}", class_names)


# --------------------------------------------------------------------------------------------
# DICOM
# --------------------------------------------------------------------------------------------

#: DICOM keywords copied into :attr:`Volume.metadata` (non-identifying).
DICOM_METADATA_TAGS: tuple[str, ...] = (
    "Modality",
    "BodyPartExamined",
    "SeriesDescription",
    "ProtocolName",
    "ImageType",
    "Manufacturer",
    "ManufacturerModelName",
    "MagneticFieldStrength",
    "KVP",
    "ConvolutionKernel",
    "RepetitionTime",
    "EchoTime",
    "SliceThickness",
    "SpacingBetweenSlices",
    "PixelSpacing",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "ImageOrientationPatient",
    "PatientPosition",
    "PhotometricInterpretation",
    "SamplesPerPixel",
    "BitsAllocated",
    "BitsStored",
    "PixelRepresentation",
    "RescaleSlope",
    "RescaleIntercept",
    "RescaleType",
    "WindowCenter",
    "WindowWidth",
    "SOPClassUID",
)

#: DICOM keywords copied into :attr:`Volume.identifiers` (identify a patient, study or site).
DICOM_IDENTIFIER_TAGS: tuple[str, ...] = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "PatientWeight",
    "OtherPatientIDs",
    "AccessionNumber",
    "StudyID",
    "StudyDescription",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "StationName",
    "DeviceSerialNumber",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "StudyDate",
    "StudyTime",
    "SeriesDate",
    "SeriesTime",
    "AcquisitionDate",
    "AcquisitionTime",
    "ContentDate",
    "ContentTime",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
    "FrameOfReferenceUID",
)

# Files in a series folder that are clearly not DICOM images and are skipped silently.
_NOT_DICOM_SUFFIXES = frozenset(
    {
        *(".txt", ".md", ".rst", ".csv", ".tsv", ".json", ".xml", ".html", ".htm", ".pdf"),
        *(".log", ".ini", ".cfg", ".yaml", ".yml", ".py", ".sh", ".bat"),
        *(".png", ".jpg", ".jpeg", ".gif", ".bmp", ".tif", ".tiff"),
        *(".nii", ".gz", ".zip", ".tar", ".npz", ".npy", ".mat", ".db"),
    }
)
_NOT_DICOM_NAMES = frozenset({"dicomdir", "thumbs.db", "desktop.ini", "readme", "license"})
_DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"


def _dicom_str(value: Any) -> str:
    from pydicom.multival import MultiValue

    if isinstance(value, (MultiValue, list, tuple)):
        return "\\".join(_dicom_str(v) for v in value)
    if isinstance(value, bytes):
        return value.decode("ascii", errors="replace")
    return str(value)


def _collect_tags(ds: Any, keywords: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for kw in keywords:
        if kw not in ds:
            continue
        elem = ds[kw]
        if elem.VR == "SQ":  # sequences (e.g. OtherPatientIDsSequence) are not flattened
            continue
        value = elem.value
        if value is None or value == "":
            continue
        out[kw] = _dicom_str(value)
    return out


def _read_dicom(p: pathlib.Path) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(p)
    except InvalidDicomError as exc:
        raise FileFormatError(f"{p} is not a DICOM file ({_one_line(exc)})") from exc
    except Exception as exc:  # pydicom raises many types on corrupt files
        raise FileFormatError(
            f"{p} is a corrupt DICOM file ({type(exc).__name__}: {_one_line(exc)})"
        ) from exc


def _dicom_pixels(ds: Any, p: pathlib.Path) -> np.ndarray:
    """Pixel array with RescaleSlope/RescaleIntercept applied, float64."""
    if not any(k in ds for k in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        sop = ds.get("SOPClassUID")
        kind = f" (SOP class {sop})" if sop else " (it may be truncated)"
        raise FileFormatError(f"{p} has no pixel data{kind}")
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise FileFormatError(
            f"{p} is a colour image (SamplesPerPixel={ds.SamplesPerPixel}, "
            f"{ds.get('PhotometricInterpretation', '?')}); only greyscale DICOM is supported"
        )
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # missing decoder plug-in, truncated pixel data, ...
        syntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
        name = getattr(syntax, "name", syntax)
        raise FileFormatError(
            f"{p}: cannot decode pixel data (transfer syntax {name}): {_one_line(exc)}"
        ) from exc
    arr = np.asarray(pixels, dtype=np.float64)
    slope = ds.get("RescaleSlope")
    intercept = ds.get("RescaleIntercept")
    if slope is not None and slope != "":
        arr = arr * float(slope)
    if intercept is not None and intercept != "":
        arr = arr + float(intercept)
    return arr


def _pixel_spacing(ds: Any) -> tuple[float, float]:
    for kw in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(kw)
        if value is not None and len(value) == 2:
            return float(value[0]), float(value[1])
    return 1.0, 1.0


def _apply_window(arr: np.ndarray, window: tuple[float, float] | None) -> np.ndarray:
    if window is None:
        return arr
    try:
        center, width = (float(v) for v in window)
    except (TypeError, ValueError):
        raise InputError(f"window must be (center, width), got {window!r}") from None
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
        raise InputError(f"window width must be a positive finite number, got {window!r}")
    low = center - width / 2.0
    return np.clip((arr - low) / width, 0.0, 1.0)


def _clearly_not_dicom(p: pathlib.Path) -> bool:
    name = p.name.lower()
    return (
        name.startswith(".") or name in _NOT_DICOM_NAMES or p.suffix.lower() in _NOT_DICOM_SUFFIXES
    )


def _unit(v: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(v)
    return v / n if n > 0 else v


def load_dicom(path: PathLike, *, window: tuple[float, float] | None = None) -> Volume:
    """Read a DICOM image or a folder holding one DICOM series.

    ``RescaleSlope`` / ``RescaleIntercept`` are applied when present, so CT values are in
    Hounsfield units. With ``window=(center, width)`` values are clipped to
    ``[center - width/2, center + width/2]`` and mapped linearly to ``[0, 1]``:
    ``clip((x - (center - width/2)) / width, 0, 1)``.

    A folder is read non-recursively. Hidden files, ``DICOMDIR`` and files whose suffix marks
    them as something else (``.txt``, ``.json``, ``.png``, ...) are skipped; any other file that
    is not readable DICOM is an error. All slices must belong to one ``SeriesInstanceUID`` and
    have the same rows x columns. Slices are ordered by ``ImagePositionPatient`` projected on the
    slice normal (the cross product of the two ``ImageOrientationPatient`` direction cosines),
    ascending; when some slice lacks position or orientation, by ``InstanceNumber`` (then file
    name). The slice spacing is the median distance between consecutive slice positions
    (a warning is issued when it varies by more than 1 %), else ``SpacingBetweenSlices``, else
    ``SliceThickness``, else 1.0.

    Parameters
    ----------
    path : str or os.PathLike
        One DICOM file, or a folder holding the files of one series.
    window : tuple of (float, float), optional
        ``(center, width)`` in output units (HU for CT).

    Returns
    -------
    Volume
        ``array`` float32: ``(H, W)`` (rows, columns) for a single-frame file, ``(frames, H, W)``
        for a multi-frame file, ``(D, H, W)`` for a folder (even of one slice). ``spacing`` in mm
        from ``PixelSpacing`` (row spacing, column spacing; ``ImagerPixelSpacing`` or 1.0 when
        absent) and the slice spacing. ``metadata`` / ``identifiers`` from the first slice
        (see :data:`DICOM_METADATA_TAGS`, :data:`DICOM_IDENTIFIER_TAGS`).

    Raises
    ------
    FileFormatError
        Missing path; corrupt or non-DICOM file (named); no pixel data; undecodable pixel data;
        empty folder; several series in a folder; slices of different shapes or orientations;
        two slices at the same position.
    InputError
        Invalid ``window``.
    """
    p = pathlib.Path(os.fspath(path)).expanduser()
    if not p.exists():
        raise FileFormatError(f"DICOM file or folder not found: {p}")
    if p.is_dir():
        return _load_dicom_series(p, window)

    ds = _read_dicom(p)
    arr = _dicom_pixels(ds, p)
    row_sp, col_sp = _pixel_spacing(ds)
    if arr.ndim == 2:
        spacing: tuple[float, ...] = (row_sp, col_sp)
    elif arr.ndim == 3:
        slice_sp = ds.get("SpacingBetweenSlices") or ds.get("SliceThickness") or 1.0
        spacing = (float(slice_sp), row_sp, col_sp)
    else:
        raise FileFormatError(f"{p} has pixel data of unsupported shape {arr.shape}")
    arr = _apply_window(arr, window)
    return Volume(
        torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)),
        spacing,
        _collect_tags(ds, DICOM_METADATA_TAGS),
        _collect_tags(ds, DICOM_IDENTIFIER_TAGS),
    )


def _load_dicom_series(folder: pathlib.Path, window: tuple[float, float] | None) -> Volume:
    entries = sorted(folder.iterdir())
    files = [e for e in entries if e.is_file() and not _clearly_not_dicom(e)]
    if not files:
        subdirs = [e.name for e in entries if e.is_dir()]
        hint = f" (it has subfolders: {', '.join(subdirs[:5])}; point at one series folder)"
        raise FileFormatError(f"no DICOM files in folder {folder}{hint if subdirs else ''}")

    slices = []
    for f in files:
        ds = _read_dicom(f)
        sop = str(ds.get("SOPClassUID", "")) or str(
            getattr(getattr(ds, "file_meta", None), "MediaStorageSOPClassUID", "")
        )
        if sop == _DICOMDIR_SOP_CLASS:
            continue
        slices.append((f, ds))
    if not slices:
        raise FileFormatError(f"no DICOM image files in folder {folder} (only a DICOMDIR)")

    uids = sorted({str(ds.get("SeriesInstanceUID", "")) for _, ds in slices})
    if len(uids) > 1:
        raise FileFormatError(
            f"folder {folder} holds {len(uids)} series (different SeriesInstanceUID); "
            f"point at a folder holding one series"
        )
    first_f, first = slices[0]
    size0 = (first.get("Rows"), first.get("Columns"))
    for f, ds in slices:
        size = (ds.get("Rows"), ds.get("Columns"))
        if size != size0:
            raise FileFormatError(
                f"{f.name} is {size[0]}x{size[1]} but {first_f.name} is {size0[0]}x{size0[1]} "
                f"(Rows x Columns); all slices of a series must have the same shape"
            )
        frames = int(ds.get("NumberOfFrames", 1) or 1)
        if frames > 1 and len(slices) > 1:
            raise FileFormatError(
                f"{f} is a multi-frame file ({frames} frames) inside a series folder; "
                f"load it on its own"
            )

    # Order the slices.
    geometry: list[tuple[np.ndarray, np.ndarray]] | None = []
    for _, ds in slices:
        ipp, iop = ds.get("ImagePositionPatient"), ds.get("ImageOrientationPatient")
        if ipp is None or iop is None or len(ipp) != 3 or len(iop) != 6:
            geometry = None
            break
        geometry.append((np.array([float(v) for v in ipp]), np.array([float(v) for v in iop])))

    positions = None
    if geometry is not None:
        iop0 = geometry[0][1]
        for (f, _), (_, iop) in zip(slices, geometry, strict=True):
            if not np.allclose(iop, iop0, atol=1e-4):
                raise FileFormatError(
                    f"{f} has ImageOrientationPatient {list(iop)} but {slices[0][0].name} has "
                    f"{list(iop0)}; a series folder must hold parallel slices"
                )
        normal = _unit(np.cross(_unit(iop0[:3]), _unit(iop0[3:])))
        positions = np.array([float(ipp @ normal) for ipp, _ in geometry])
        order = np.argsort(positions, kind="stable")
        positions = positions[order]
        dup = np.flatnonzero(np.diff(positions) < 1e-6)
        if dup.size:
            i = int(dup[0])
            fa, fb = slices[int(order[i])][0], slices[int(order[i + 1])][0]
            raise FileFormatError(
                f"{fa.name} and {fb.name} in {folder} lie at the same slice position "
                f"({positions[i]:.3f} mm); the folder may hold several volumes (time points, "
                f"echoes)"
            )
    else:
        keys = []
        for i, (_, ds) in enumerate(slices):
            inst = ds.get("InstanceNumber")
            keys.append((0, int(inst), i) if inst not in (None, "") else (1, 0, i))
        order = np.array([k[2] for k in sorted(keys)], dtype=np.int64)
    slices = [slices[int(i)] for i in order]

    first_f, first = slices[0]
    planes: list[np.ndarray] = []
    for f, ds in slices:
        arr = _dicom_pixels(ds, f)
        if arr.ndim == 3 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 2:
            raise FileFormatError(f"{f} has pixel data of unsupported shape {arr.shape}")
        if planes and arr.shape != planes[0].shape:
            raise FileFormatError(
                f"{f.name} is {arr.shape[0]}x{arr.shape[1]} but {first_f.name} is "
                f"{planes[0].shape[0]}x{planes[0].shape[1]}; all slices of a series must have "
                f"the same shape"
            )
        planes.append(arr)
    volume = np.stack(planes)

    row_sp, col_sp = _pixel_spacing(first)
    slice_sp = None
    if positions is not None and positions.size > 1:
        gaps = np.diff(positions)
        slice_sp = float(np.median(gaps))
        if gaps.max() - gaps.min() > 0.01 * slice_sp:
            warnings.warn(
                f"DICOM series in {folder} has irregular slice spacing "
                f"({gaps.min():.3f} to {gaps.max():.3f} mm); using the median {slice_sp:.3f} mm",
                stacklevel=3,
            )
    if slice_sp is None:
        fallback = first.get("SpacingBetweenSlices") or first.get("SliceThickness") or 1.0
        slice_sp = float(fallback)

    volume = _apply_window(volume, window)
    return Volume(
        torch.from_numpy(np.ascontiguousarray(volume, dtype=np.float32)),
        (slice_sp, row_sp, col_sp),
        _collect_tags(first, DICOM_METADATA_TAGS),
        _collect_tags(first, DICOM_IDENTIFIER_TAGS),
    )


# --------------------------------------------------------------------------------------------
# NIfTI
# --------------------------------------------------------------------------------------------

_UNIT_TO_MM = {"mm": 1.0, "meter": 1000.0, "micron": 0.001, "unknown": 1.0}


def load_nifti(path: PathLike) -> Volume:
    """Read a NIfTI-1 or NIfTI-2 image (``.nii``, ``.nii.gz``, or an ``.hdr``/``.img`` pair).

    The data are returned in the file's voxel axis order (``i, j, k``); nothing is reoriented or
    resampled. The orientation of those axes is recorded in ``metadata["AxisCodes"]`` (e.g.
    ``"RAS"``: axis 0 runs towards the patient's right, ...) and the voxel-to-world affine in
    ``metadata["Affine"]``. ``scl_slope`` / ``scl_inter`` are applied. NaN values are kept.

    Parameters
    ----------
    path : str or os.PathLike
        The NIfTI file.

    Returns
    -------
    Volume
        ``array`` float32 of shape ``(I, J, K)`` (or ``(I, J)`` for a 2-D image); a 4-D image
        whose last axis has length 1 is squeezed to 3-D. ``spacing`` from the header zooms,
        converted to mm when the header gives metres or microns. ``identifiers`` holds the
        free-text header fields (``descrip``, ``aux_file``, ``db_name``) when set, since they
        may name a patient.

    Raises
    ------
    FileFormatError
        Missing or corrupt file, a format other than NIfTI, or an image with more than three
        non-singleton axes (e.g. a 4-D time series: select one volume first).
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
        raise FileFormatError(f"{p} is a {type(img).__name__}, not a NIfTI image")
    shape = tuple(int(s) for s in img.shape)
    keep = len(shape)
    while keep > 3 and shape[keep - 1] == 1:
        keep -= 1
    if keep > 3 or keep < 2:
        raise FileFormatError(
            f"{p} has shape {shape}; load_nifti reads one 2-D or 3-D image "
            f"(select a single volume of a 4-D series first)"
        )
    try:
        data = img.get_fdata(dtype=np.float32)
    except Exception as exc:  # truncated or corrupt data block
        raise FileFormatError(
            f"{p} is corrupt: cannot read its voxel data ({type(exc).__name__}: {_one_line(exc)})"
        ) from exc
    data = data.reshape(shape[:keep])

    header = img.header
    space_unit, _ = header.get_xyzt_units()
    factor = _UNIT_TO_MM.get(space_unit, 1.0)
    zooms = header.get_zooms()
    spacing = tuple(float(z) * factor for z in zooms[:keep])

    metadata = {
        "Format": "NIfTI-2" if isinstance(img, (nib.Nifti2Image, nib.Nifti2Pair)) else "NIfTI-1",
        "DataType": str(img.get_data_dtype()),
        "Shape": "x".join(str(s) for s in shape),
        "SpatialUnits": str(space_unit),
    }
    affine = img.affine
    if affine is not None:
        metadata["Affine"] = repr(np.round(affine, 6).tolist())
        if keep == 3:
            metadata["AxisCodes"] = "".join(nib.aff2axcodes(affine))
    identifiers = {}
    for field in ("descrip", "aux_file", "db_name"):
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
