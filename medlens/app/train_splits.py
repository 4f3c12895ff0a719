"""Train on splits a use case has already made (notes, signal windows): one route into the data-set recipe.

The user's own data is read and split by its use case (notes by patient group, windows by record
or by stretch of a record); :func:`train_on_splits` writes the splits into a scratch npz archive in
the layout ``medlens train`` reads (``{split}_tokens`` / ``{split}_signals``, ``{split}_labels``,
``class_names``) and trains through :func:`medlens.app.recipes.train_on_dataset`, so validation,
test scores, calibration and the familiarity reference are computed as for every other model.
With ``balanced`` each training case is drawn with weight ``1 / (cases of its class)``. A class
missing from a split is named in the warning (:func:`missing_classes`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from medlens.app.recipes import Trained, chance_warning, train_on_dataset, trained_summary
from medlens.data.cases import data_words
from medlens.errors import InputError

__all__ = ["missing_classes", "train_on_splits"]

SPLITS = ("train", "val", "test")


def train_on_splits(arch: str, splits: Mapping[str, tuple[torch.Tensor, torch.Tensor]], class_names: Sequence[str],
                    *, data: str, epochs: int, seed: int, progress: Any, balanced: bool = True) -> Trained:
    """Train ``arch`` on ``splits`` (``{"train"|"val"|"test": (inputs, labels)}``).

    ``inputs`` are int64 token ids ``(N, L)`` or float signals ``(N, C, L)``; ``data`` names the
    user's data in the summary and the model's metadata.
    """
    for split in SPLITS:
        if split not in splits or len(splits[split][1]) == 0:
            raise InputError(f"the {split} split is empty: give more cases (or more groups)")
    train_labels = splits["train"][1].long()
    k = len(class_names)
    options: dict[str, Any] = {}
    if balanced:
        counts = torch.bincount(train_labels, minlength=k).double()
        options["sample_weights"] = 1.0 / counts[train_labels]
    with tempfile.TemporaryDirectory(prefix="medlens-train-") as scratch:
        path = Path(scratch) / "data.npz"
        arrays: dict[str, np.ndarray] = {"class_names": np.asarray(list(class_names))}
        for split in SPLITS:
            inputs, labels = splits[split]
            key = "tokens" if not inputs.is_floating_point() else "signals"
            arrays[f"{split}_{key}"] = inputs.numpy()
            arrays[f"{split}_labels"] = labels.long().numpy()
        np.savez(path, **arrays)
        model, meta = train_on_dataset(str(path), arch=arch, epochs=epochs, seed=seed, progress=progress, **options)
    meta["data"] = data_words(data, "signal records" if splits["train"][0].is_floating_point() else "notes")
    meta["balanced_sampling"] = bool(balanced)
    noun = "signal windows" if splits["train"][0].is_floating_point() else "notes"
    found = [w for w in (chance_warning(meta["val"]), missing_classes(splits, class_names, noun, balanced)) if w]
    return Trained(model, meta, trained_summary(arch, data, meta), warning="\n".join(found) or None)


def missing_classes(splits: Mapping[str, tuple[torch.Tensor, torch.Tensor]], class_names: Sequence[str], noun: str,
                    balanced: bool) -> str | None:
    """One sentence on the classes absent from a split (too few cases to be learnt, validated and
    tested), with how often balanced sampling repeats the rarest class's cases; ``None`` if none."""
    k = len(class_names)
    counts = {split: torch.bincount(splits[split][1].long(), minlength=k).tolist() for split in SPLITS}
    missing = [c for c in range(k) if not all(counts[split][c] for split in SPLITS)]
    if not missing:
        return None
    listed = ", ".join(f"{class_names[c]!r} ({'/'.join(str(counts[s][c]) for s in SPLITS)})" for c in missing[:8])
    more = f" and {len(missing) - 8} more" if len(missing) > 8 else ""
    sentence = (f"{len(missing)} of {k} classes are missing from the training, validation or test split ({noun} in "
                f"training/validation/test: {listed}{more}): a class never trained on is never predicted, one never "
                f"validated or tested has no score")
    present = [n for n in counts["train"] if n]
    if balanced and present:
        repeats = sum(counts["train"]) / len(present) / min(present)
        rarest = class_names[counts["train"].index(min(present))]
        sentence += (f"; balanced sampling draws every training class equally often, so each training case of "
                     f"{rarest!r} is drawn about {repeats:.0f} times an epoch")
    return sentence + "; merge or leave out the rare classes, or give more cases"
