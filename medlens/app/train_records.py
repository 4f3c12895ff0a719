"""Train on signal records: ``medlens train --data records/ --windows beats|fixed``.

Windows are cut by :func:`medlens.data.records.windows_from_folder`: around every annotation whose
symbol ``--annotation-labels`` maps to a class (``--before``/``--after`` seconds), or fixed
windows of ``--length`` seconds (every ``--step`` seconds) labelled per record by ``--labels``
(CSV ``record,label``). The split keeps cases apart in time or by record:

* three records or more: 70/15/15 of the records (no record in two splits);
* fewer: each record's windows in time order, the first 70% for training, the next 15% for
  validation, the last 15% for testing (stretches of the record that do not overlap in
  annotations; neighbouring beat windows may share up to ``before + after`` seconds at a border).

The model file stores the rate, window and leads (``meta["recipe"]`` and ``meta["windows"]``), so
``explain``, ``predict`` and ``report`` cut a record the same way, resampled to the model's rate.
"""

from __future__ import annotations

from typing import Any

import torch

from medlens.app.recipes import Trained
from medlens.app.train_splits import train_on_splits
from medlens.data.cases import pseudonym
from medlens.data.formats.text import split_by_group
from medlens.data.record_cases import WINDOW_KINDS, window_settings
from medlens.data.records import Windows, parse_annotation_labels, parse_leads, windows_from_folder
from medlens.errors import InputError

__all__ = ["classes_not_trained", "train_on_records", "window_split"]

SHARES = (0.7, 0.15)  # train, validation (the rest: test)


def window_split(windows: Windows, seed: int) -> dict[str, torch.Tensor]:
    """Indices of the train, validation and test windows (by record, or by stretch of time)."""
    records = sorted(set(windows.records))
    if len(records) >= 3:
        parts = split_by_group(windows.records, val=SHARES[1], test=1 - sum(SHARES), seed=seed)
        return {s: torch.tensor(p, dtype=torch.long) for s, p in zip(("train", "val", "test"), parts)}
    out: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for record in records:
        rows = [i for i, r in enumerate(windows.records) if r == record]
        rows.sort(key=lambda i: float(windows.times[i]))
        a = int(round(SHARES[0] * len(rows)))
        b = int(round((SHARES[0] + SHARES[1]) * len(rows)))
        out["train"] += rows[:a]
        out["val"] += rows[a:b]
        out["test"] += rows[b:]
    return {s: torch.tensor(v, dtype=torch.long) for s, v in out.items()}


def classes_not_trained(windows: Windows, parts: dict[str, torch.Tensor]) -> list[str]:
    """One phrase per class with windows but none in the training split ("ventricular has 1 window in
    all, none in the training split (...)"); refused when fewer than two classes are left to train on."""
    trained = set(windows.labels[parts["train"]].tolist())
    how = ("by record" if len(set(windows.records)) >= 3
           else "in time: the first 70% of each record's windows train, the next 15% validate, the last 15% test")
    lines = []
    for k, name in enumerate(windows.class_names):
        total = int((windows.labels == k).sum())
        if total and k not in trained:
            per = ", ".join(f"{int((windows.labels[idx] == k).sum())} {split}" for split, idx in parts.items())
            lines.append(f"{name} has {total} window{'' if total == 1 else 's'} in all, none in the training split "
                         f"({per}; the split is {how})")
    if lines and len(trained) < 2:
        only = ", ".join(windows.class_names[k] for k in sorted(trained)) or "none"
        raise InputError(f"the training split holds one class only ({only}): {'; '.join(lines)}; give records "
                         "with more windows of it")
    return lines


def train_on_records(request: Any, progress: Any) -> Trained:
    """Train on the records of ``request.data`` (a :class:`medlens.app.train.TrainRequest`)."""
    from medlens.app.predict_sources import read_record_labels

    kind = request.windows
    if kind not in WINDOW_KINDS:
        raise InputError(f"--windows must be {' or '.join(WINDOW_KINDS)}, got {kind!r}")
    mapping = parse_annotation_labels(request.annotation_labels) if kind == "beats" else None
    if kind == "beats" and request.labels is not None:
        raise InputError("--labels is for fixed windows: beat windows take their labels from --annotation-labels")
    if kind == "fixed" and (request.labels is None or request.length is None):
        raise InputError("fixed windows need --length SECONDS and --labels FILE (CSV record,label)")
    leads = parse_leads(request.recipe.leads)
    windows = windows_from_folder(
        request.data, windows=kind, annotation_labels=mapping,
        record_labels=read_record_labels(request.labels) if kind == "fixed" else None,
        before=request.before, after=request.after, length=request.length, step=request.step,
        leads=leads or None, normalize=request.recipe.normalize or "none",
        class_names=request.names() or None,
    )
    parts = window_split(windows, request.seed)
    untrained = classes_not_trained(windows, parts)
    splits = {s: (windows.inputs[idx], windows.labels[idx]) for s, idx in parts.items()}
    trained = train_on_splits(request.arch or "attention-rnn", splits, windows.class_names, data=str(request.data),
                              epochs=request.epochs, seed=request.seed, progress=progress)
    trained.meta.update(
        recipe=windows.recipe().to_dict(), class_names=list(windows.class_names), input_kind="records",
        windows=window_settings(windows, kind, annotation_labels=mapping, step=request.step),
        cases={s: int(len(idx)) for s, idx in parts.items()}, skipped=dict(windows.skipped),
        # records by position, as predict/evaluate/audit name them (their names are file names)
        test_from_seconds={pseudonym(k): min((float(windows.times[i]) for i in parts["test"].tolist()
                                              if windows.records[i] == r), default=None)
                           for k, r in enumerate(dict.fromkeys(windows.records))},
        split="by record" if len(set(windows.records)) >= 3 else "by stretch of each record (70/15/15 in time)",
    )
    trained.notes += [f"warning: {line}: the model never learns it" for line in untrained]
    counts = {n: int((windows.labels == k).sum()) for k, n in enumerate(windows.class_names)}
    trained.notes.append(f"windows: {len(windows)} at {windows.fs:g} Hz ({windows.inputs.shape[-1]} samples, leads "
                         f"{', '.join(windows.leads)}), {counts}; skipped {windows.skipped or 'none'}")
    return trained
