"""Labelled data sets: the bundled real data, npz archives (MedMNIST layout) and UCR ECG text.

Every loader returns torch tensors. Errors are one line naming the file and the problem
(:class:`~medlens.errors.FileFormatError`, :class:`~medlens.errors.InputError`,
:class:`~medlens.errors.UnknownNameError` for an unknown bundled name or split).
Provenance and licences of the bundled data: ``medlens/data/bundled/LICENSES.md``.
"""

from __future__ import annotations

import math
import os
import pathlib
import re
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from typing import Any, Iterator

import numpy as np
import torch

from medlens.data.common import PathLike, _check_finite, _existing_file, _one_line
from medlens.errors import FileFormatError, InputError, UnknownNameError

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

def _bundled_resource(name: str) -> Any:
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


# --------------------------------------------------------------------------------------------
# npz (MedMNIST layout)
# --------------------------------------------------------------------------------------------

_INPUT_KINDS = ("images", "signals", "tokens")
_SPLIT_KEY = re.compile(r"^(.+)_(images|signals|tokens)$")


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
        with bundled_file(key) as path:
            loaded = load_npz(path, split)
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

    if path is None:
        with bundled_file("ecg5000") as p:
            classes, signals = _read_ucr(p)
    else:
        p = _existing_file(path, "ECG5000 text file")
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
