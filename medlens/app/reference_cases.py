"""The reference cases of ``basis`` and ``concepts``: one split of a data set, or a folder of scans.

``medlens basis`` retrieves from, and ``medlens concepts`` fits on, a whole set of cases held at
once (``--data``). A data set gives its ``train`` / ``test`` split (:func:`labelled_set`). A folder
of scans (with an optional ``--labels`` CSV) is read case by case through the model's recipe, as
train and predict read it (:func:`medlens.app.inputs.model_cases`), into one tensor of model inputs
whose size is checked against the memory budget before it is filled. Its cases keep their stable
ids (``case-0003``: :func:`medlens.data.cases.pseudonym`), never their file names.

Which of a folder's cases are "train" and "test": the model's own split when it was trained on
this folder (``split_positions`` in its metadata, the cases read there matching its
``split_digests["train"]``, a digest of the training inputs: :func:`inputs_digest`); else every case is a
reference case and, where a held-out part is asked for (concepts), a seeded share of the folder
is held out. A folder with the same number of cases but other images, or the same images in
another order (DICOM files named by new UIDs), is not taken for the training folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import torch

from medlens.errors import InputError, MedlensError

__all__ = ["HELD_OUT_SHARE", "ReferenceSet", "UNKNOWN", "folder_positions", "inputs_digest", "reference_sets"]

#: The label of a case whose class is not known (a folder without a labels file, or a case it leaves out).
UNKNOWN = -1

#: Share of a folder held out (concepts' held-out fidelity) when the model recorded no split of it.
HELD_OUT_SHARE = 0.2


@dataclass
class ReferenceSet:
    """Cases held at once: ``inputs`` ``(N, C, *spatial)``, ``labels`` ``(N,)`` (:data:`UNKNOWN`
    where not known), ``names`` the cases' ids (``None`` for a data set, whose cases are its rows),
    ``class_names``, ``cases`` the opened folder (``None`` for a data set; its
    ``identifier_rows`` map ids to files), ``chosen`` how the cases were chosen, in words, and
    ``positions`` each row's position in the folder (``None`` for a data set)."""

    inputs: torch.Tensor
    labels: torch.Tensor
    names: list[str] | None
    class_names: tuple[str, ...]
    cases: Any = None
    chosen: str = ""
    positions: list[int] | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def has_labels(self) -> bool:
        return bool((self.labels != UNKNOWN).any())

    def name(self, row: int) -> str:
        """Row ``row``'s name in outputs: its case id, or its row number in a data set."""
        return str(row) if self.names is None else self.names[row]

    def labelled(self, name: str) -> Any:
        """The cases as a :class:`~medlens.data.datasets.LabelledSet` named ``name`` (no masks)."""
        from medlens.data.datasets.labelled import LabelledSet

        return LabelledSet(self.inputs, self.labels, None, name, self.class_names)

    def words(self, row: int) -> str:
        """Row ``row`` in a sentence: ``"case #4"`` (a data set's 0-based row) or ``"case-0004"`` (a folder's case id)."""
        return f"case #{row}" if self.names is None else self.names[row]


def reference_sets(data: str, meta: dict[str, Any], *, held_out: bool = False, labels: str | None = None,
                   recipe: Any = None, show_identifiers: bool = False, memory_mb: float | None = None,
                   seed: int = 0, limit: int | None = None) -> tuple[ReferenceSet, ReferenceSet | None]:
    """The ``train`` cases of ``data`` for the model with metadata ``meta`` and, with ``held_out``,
    its ``test`` cases (``None`` when there are none: a data set without a test split).

    A folder is the model's training folder when its recorded ``train`` positions read now match
    the recorded digest; then its recorded ``test`` positions are held out. Any other folder is
    every case (``held_out=False``) or split at random by ``seed``, :data:`HELD_OUT_SHARE` held out.

    ``limit``: at most that many ``train`` cases; of a folder also at most that many held out, its
    other cases never read (reading them is the cost; so its recorded split, whose digest needs
    every training case, is not looked for). A data set's held-out split stays whole."""
    from medlens.app.inputs import model_cases
    from medlens.data.cases import is_dataset

    if limit is not None and limit < 1:
        raise InputError(f"--limit must be at least 1, got {limit}")
    if is_dataset(data):
        if labels is not None:
            raise MedlensError("--labels is for scans: an npz data set carries its own labels")
        train, test = _dataset_split(data, "train", memory_mb), _dataset_split(data, "test", memory_mb) if held_out else None
        return _first(train, limit), test  # the held-out split comes whole in its one array: all of it is scored
    cases = model_cases(data, meta, labels=labels, recipe=recipe, what="--data", show_identifiers=show_identifiers,
                        memory_mb=memory_mb)
    train = _recorded_train(cases, meta, memory_mb) if limit is None else None
    if train is not None:
        test = _recorded_positions(len(cases), meta, "test") if held_out else []
        return train, _read_folder(cases, test, "the model's test split of this folder", memory_mb) if test else None
    share = HELD_OUT_SHARE if held_out else 0.0
    train_positions, train_words = _cut(*folder_positions(len(cases), "train", hold_out=share, seed=seed), limit)
    test_positions, test_words = _cut(*folder_positions(len(cases), "test", hold_out=share, seed=seed), limit)
    return (_read_folder(cases, train_positions, train_words, memory_mb),
            _read_folder(cases, test_positions, test_words, memory_mb) if test_positions else None)


def _cut(positions: list[int], words: str, limit: int | None) -> tuple[list[int], str]:
    """The first ``limit`` of a folder's ``positions`` (before any is read), and their words."""
    if limit is None or len(positions) <= limit:
        return positions, words
    return positions[:limit], f"the first {limit} (--limit) of {words}"


def _first(chosen: ReferenceSet | None, limit: int | None) -> ReferenceSet | None:
    """The first ``limit`` cases of a data set's split (its arrays are read whole: an npz member is one array)."""
    if chosen is None or limit is None or len(chosen) <= limit:
        return chosen
    return ReferenceSet(chosen.inputs[:limit], chosen.labels[:limit], None, chosen.class_names,
                        chosen=f"the first {limit} cases of the {chosen.chosen}")


def _dataset_split(data: str, split: str, memory_mb: float | None) -> ReferenceSet | None:
    """One split of a data set; ``None`` for a missing ``test`` split."""
    from medlens.data.cases import labelled_set

    try:
        chosen = labelled_set(data, split, memory_mb=memory_mb)
    except MedlensError:
        if split == "train":
            raise
        return None
    return ReferenceSet(chosen.inputs, chosen.labels, None, tuple(chosen.class_names), chosen=f"{split} split")


def _recorded_train(cases: Any, meta: dict[str, Any], memory_mb: float | None) -> ReferenceSet | None:
    """The model's recorded training cases of this folder, when those read now match its digest."""
    positions = _recorded_positions(len(cases), meta, "train")
    if not positions or "train" not in (meta.get("split_digests") or {}):
        return None
    read = _read_folder(cases, positions, "the model's train split of this folder", memory_mb)
    return read if inputs_digest(read.inputs) == meta["split_digests"]["train"] else None


def inputs_digest(inputs: torch.Tensor) -> str:
    """A digest of model inputs ``(N, C, *spatial)`` (their float32 values in order): whether a
    folder read now gives the cases a model was trained on. It names no file and no patient."""
    import hashlib

    values = inputs.detach().to("cpu", torch.float32).contiguous().numpy()
    return hashlib.sha256(repr(values.shape).encode() + values.tobytes()).hexdigest()[:32]


def _recorded_positions(n: int, meta: dict[str, Any], split: str) -> list[int]:
    """The positions of ``split`` the model recorded for the folder it was trained on, when they
    fit a folder of ``n`` cases."""
    recorded = (meta.get("split_positions") or {}).get(split) or ()
    return [int(p) for p in recorded] if all(0 <= int(p) < n for p in recorded) else []


def folder_positions(n: int, split: str, *, hold_out: float = 0.0, seed: int = 0) -> tuple[list[int], str]:
    """The positions of a folder of ``n`` cases in ``split`` when the model recorded no split of it
    (every case, or a seeded share ``hold_out`` held out), and how they were chosen in words."""
    from medlens.core.random import generator

    if not hold_out:
        return (list(range(n)), "every case of the folder") if split == "train" else ([], "")
    order = torch.randperm(n, generator=generator(seed, "reference-split")).tolist()
    n_test = int(round(hold_out * n)) if n > 1 else 0
    part = sorted(order[:n_test] if split == "test" else order[n_test:])
    return part, f"{len(part)} of the folder's {n} cases, at random (seed {seed})"


def _read_folder(cases: Any, positions: Sequence[int], chosen: str, memory_mb: float | None) -> ReferenceSet:
    """The cases at ``positions`` read one by one into one tensor, its size checked against the
    memory budget once the first readable case gives the model input's shape."""
    first = _first_readable(cases, positions)
    _check_budget(len(positions), tuple(first.x.shape[1:]), memory_mb)
    rest = cases.load(list(positions)[list(positions).index(first.indices[0]) + 1:])
    if rest.x is not None and tuple(rest.x.shape[1:]) != tuple(first.x.shape[1:]):
        raise InputError(f"the cases of --data give model inputs of shapes {tuple(first.x.shape[1:])} and "
                         f"{tuple(rest.x.shape[1:])}: give a recipe size (--size)")
    x = first.x if rest.x is None else torch.cat([first.x, rest.x])
    kept = first.indices + rest.indices
    labels = torch.tensor([UNKNOWN if v is None else int(v) for v in first.labels + rest.labels], dtype=torch.long)
    failed = {**first.failed, **rest.failed}
    return ReferenceSet(x, labels, [cases.names[i] for i in kept], tuple(cases.class_names), cases=cases,
                        chosen=chosen + _unreadable(failed), positions=list(kept))


def _first_readable(cases: Any, positions: Sequence[int]) -> Any:
    """The first readable case of ``positions`` as a one-case batch (carrying the failures before it)."""
    import dataclasses

    failed: dict[int, str] = {}
    for i in positions:
        batch = cases.load([i])
        if batch.x is not None:
            return dataclasses.replace(batch, failed=failed)
        failed.update(batch.failed)
    error = next(iter(failed.values()), "")
    raise InputError(f"nothing readable in --data ({len(failed)} case(s); first error: {error})")


def _check_budget(n: int, shape: tuple[int, ...], memory_mb: float | None) -> None:
    """Refuse ``n`` model inputs of ``shape`` (float32) larger than the decoding limit, before reading them."""
    from medlens.data.formats.limits import declared_bytes, decode_limit_bytes

    need, limit = declared_bytes((n, *shape), 4), decode_limit_bytes(memory_mb)
    if need > limit:
        raise InputError(f"--data: {n} cases of model input {shape} need {need / 2**20:.2f} MB, above the memory "
                         f"budget of {limit / 2**20:.2f} MB (raise it with --memory-mb, or give fewer cases)")


def _unreadable(failed: dict[int, str]) -> str:
    """"; 2 unreadable case(s) left out (first: ...)" or ""."""
    if not failed:
        return ""
    return f"; {len(failed)} unreadable case(s) left out (first: {next(iter(failed.values()))})"
