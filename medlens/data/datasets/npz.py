"""npz archives in the MedMNIST layout (``train_images``, ``train_labels``, optional ``train_masks``)."""

from __future__ import annotations

import pathlib
import re
import zipfile
from typing import Any

import numpy as np
import torch

from medlens.data.datasets.labelled import LabelledSet
from medlens.data.formats.common import (
    PathLike,
    _check_finite,
    _existing_file,
    _one_line,
)
from medlens.errors import FileFormatError, InputError, UnknownNameError

# --------------------------------------------------------------------------------------------
# npz (MedMNIST layout)
# --------------------------------------------------------------------------------------------

_INPUT_KINDS = ("images", "signals", "tokens")
_SPLIT_KEY = re.compile(r"^(.+)_(images|signals|tokens)$")


def _as_labels(raw: np.ndarray, n: int, where: str) -> torch.Tensor:
    if raw.ndim == 2 and raw.shape[1] == 1:
        raw = raw[:, 0]
    if raw.ndim == 2:
        return _as_findings(raw, n, where)
    if raw.ndim != 1:
        raise InputError(
            f"{where} has shape {tuple(raw.shape)}; expected (N,) or (N, 1) class indices, or (N, K) 0/1 findings"
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


def _as_findings(raw: np.ndarray, n: int, where: str) -> torch.Tensor:
    """Multi-label labels (ChestMNIST's layout): ``(N, K)`` of 0/1, one column per finding -> float32 ``(N, K)``."""
    if raw.dtype.kind not in "biuf":
        raise InputError(f"{where} has dtype {raw.dtype}; expected 0/1 findings")
    _check_finite(raw, where)
    if raw.size and not np.isin(raw, (0, 1)).all():
        bad = raw[~np.isin(raw, (0, 1))].flat[0]
        raise InputError(f"{where} has shape {tuple(raw.shape)} (one column per finding) but holds {bad!r}; "
                         "each finding must be 0 (absent) or 1 (present)")
    if raw.shape[0] != n:
        raise InputError(f"{where} holds {raw.shape[0]} labels but there are {n} inputs")
    return torch.from_numpy(raw.astype(np.float32))


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


def load_npz(path: PathLike, split: str, *, memory_mb: float | None = None) -> LabelledSet:
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

    * ``s_labels``: ``(N,)`` or ``(N, 1)`` integer class indices -> int64 ``(N,)``; or ``(N, K)``
      of 0/1, one column per finding (multi-label, ChestMNIST's layout) -> float32 ``(N, K)``.
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
            _check_split_size(p, split, memory_mb)
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


def _check_split_size(p: pathlib.Path, split: str, memory_mb: float | None) -> None:
    """Refuse, before decompressing anything, a split whose arrays' headers declare more than the
    decoding limit (:func:`~medlens.data.formats.limits.check_decoded_size`): each member's
    ``.npy`` header gives its shape and dtype."""
    from medlens.data.formats.limits import check_decoded_size, declared_bytes

    total, parts = 0, []
    with zipfile.ZipFile(p) as archive:
        for info in archive.infolist():
            name = info.filename
            if not name.startswith(f"{split}_") or not name.endswith(".npy"):
                continue
            with archive.open(info) as fh:
                version = np.lib.format.read_magic(fh)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _order, dtype = read_header(fh)
            total += declared_bytes(shape, dtype.itemsize)
            parts.append(f"{name[:-4]} {'x'.join(str(v) for v in shape)} {dtype}")
    check_decoded_size(p, (total,), 1, memory_mb=memory_mb, what="bytes of arrays",
                       detail="; ".join(parts) or "no arrays")


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
        if labels.ndim == 2 and labels.shape[1] != len(class_names):
            raise InputError(f"{p.name}['{split}_labels'] has {labels.shape[1]} finding columns but class_names "
                             f"names {len(class_names)}")
        if labels.ndim == 1 and n and int(labels.max()) >= len(class_names):
            raise InputError(
                f"{p.name}['{split}_labels'] holds label {int(labels.max())} but class_names "
                f"names only {len(class_names)} classes"
            )
    else:
        n_classes = labels.shape[1] if labels.ndim == 2 else int(labels.max()) + 1 if n else 0
        class_names = tuple(str(k) for k in range(n_classes))

    return LabelledSet(inputs, labels, masks, f"{p.stem}/{split}", class_names)


