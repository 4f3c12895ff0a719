"""ECG5000 in the UCR text format, split and binarised."""

from __future__ import annotations

import math
import pathlib

import numpy as np
import torch

from medlens.data.datasets.bundled import bundled_file
from medlens.data.datasets.labelled import LabelledSet
from medlens.data.formats.common import (
    PathLike,
    _existing_file,
    _one_line,
)
from medlens.errors import FileFormatError, InputError, UnknownNameError

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
