"""The ``train`` use case: train a reference model on a bundled data set, an npz file, or a folder
of scans with a labels file, and write the model file.

:func:`train_model` takes a :class:`TrainRequest` and returns a :class:`TrainResult`. Scans come
from the case workflow (:func:`medlens.data.cases.open_cases`) through the recipe the request
describes, which is stored in the model file, so that ``explain``, ``evaluate`` and ``audit``
prepare a user's files the same way. The architecture's route is :mod:`medlens.app.recipes`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medlens.app.inputs import RecipeOptions, resolve_recipe
from medlens.data.cases import is_dataset, open_cases
from medlens.data.notes_cases import is_notes_file
from medlens.errors import InputError, MedlensError

#: Shares of a folder's labelled cases that go to training and validation (the rest: test).
FOLDER_SPLIT = (0.7, 0.15)


@dataclass(frozen=True)
class TrainRequest:
    """The arguments of ``medlens train``: ``data`` a bundled name, an npz path, a simulator name
    (``--arch scinet`` / ``groupinn``) or a folder of scans with ``labels`` (CSV ``case,label``,
    a class index or a class name); ``recipe`` how scans become inputs (stored in the model)."""

    data: str
    out: str
    arch: str | None = None  # default: cnn; attention-rnn for notes and records
    epochs: int = 10
    labels: str | None = None
    recipe: RecipeOptions = field(default_factory=RecipeOptions)
    seed: int = 0
    quiet: bool = True
    class_names: tuple[str, ...] = ()
    # notes (a CSV / JSON Lines file): medlens.app.train_notes
    text_column: str = "text"
    label_column: str = "label"
    max_length: int = 256
    max_vocab: int = 5000
    # signal records (--windows beats|fixed): medlens.app.train_records
    windows: str | None = None
    annotation_labels: str | None = None
    before: float = 0.25
    after: float = 0.45
    length: float | None = None
    step: float | None = None

    def validate(self) -> None:
        """Fail, in one line, on what can be told before any work."""
        if self.epochs < 1:
            raise MedlensError(f"--epochs must be at least 1, got {self.epochs}")
        if self.labels is not None and is_dataset(self.data):
            raise MedlensError("--labels is for scans: an npz data set carries its own labels")


@dataclass
class TrainResult:
    """The model written, its metadata, the summary line and a warning (or ``None``)."""

    out: str
    meta: dict[str, Any]
    summary: str
    warning: str | None = None
    lines: list[str] = field(default_factory=list)


def train_model(request: TrainRequest | None = None, **kwargs: Any) -> TrainResult:
    """Train ``request.arch`` on ``request.data`` and save it to ``request.out``.
    Takes a :class:`TrainRequest` or its fields as keywords.

    A data set (bundled, npz or a simulator) goes to the architecture's registered training recipe
    (:data:`medlens.app.recipes.TRAINING`); a folder of scans is read through the request's recipe
    into a scratch data set first, then takes the same route."""
    from medlens.app.recipes import train
    from medlens.models import save_model

    request = request if request is not None else TrainRequest(**kwargs)
    request.validate()
    if request.windows is not None or is_notes_file(request.data):
        from medlens.app.train_notes import train_on_notes
        from medlens.app.train_records import train_on_records

        trained = (train_on_records if request.windows is not None else train_on_notes)(request, not request.quiet)
        save_model(trained.model, request.out, trained.meta)
        return TrainResult(request.out, trained.meta, f"{trained.summary} -> {request.out}", trained.warning,
                           list(trained.notes))
    request = replace(request, arch=request.arch or "cnn")
    if is_dataset(request.data) or request.labels is None and not Path(request.data).is_dir():
        trained = train(request.arch, request.data, epochs=request.epochs, seed=request.seed,
                        progress=not request.quiet, recipe=_dataset_recipe(request.recipe))
    else:
        trained = _train_on_scans(request, train)
    save_model(trained.model, request.out, trained.meta)
    return TrainResult(request.out, trained.meta, f"{trained.summary} -> {request.out}", trained.warning,
                       list(trained.notes))


def _dataset_recipe(options: RecipeOptions) -> Any:
    """A data set's recipe from ``--recipe`` and ``--window`` (``None``: the stored inputs' own)."""
    from medlens.data.recipe import Recipe, parse_window

    recipe = Recipe.from_file(options.recipe) if options.recipe else None
    if options.windows:
        recipe = (recipe or Recipe()).replace(windows=tuple(parse_window(w) for w in options.windows))
    return recipe


def _scan_recipe(options: RecipeOptions) -> Any:
    """The recipe a folder of scans is trained with: the request's, min-max scaled by default."""
    if options.recipe is None and options.normalize is None and not options.windows:
        options = replace(options, normalize="minmax")
    return resolve_recipe(options, {})


def _train_on_scans(request: TrainRequest, train: Any) -> Any:
    """Read a folder's labelled scans through the recipe, split them, train through the data-set
    route, and store the scans' recipe and class names in the model's metadata."""
    from medlens.core.random import generator
    from medlens.data.formats.folders import class_names_in, read_groups

    if request.labels is None:
        raise MedlensError("training on scans needs --labels FILE (CSV with columns case,label)")
    recipe = _scan_recipe(request.recipe)
    class_names = tuple(request.class_names) or class_names_in(request.labels)
    cases = open_cases(request.data, recipe=recipe, labels=request.labels, class_names=class_names, what="data")
    labelled = [i for i, label in enumerate(cases.scans.labels) if label is not None]
    x, kept, failed = cases.scans.load(labelled)
    if x is None or len(kept) < 3:
        first = next(iter(failed.values()), "")
        raise InputError(f"training needs at least 3 readable labelled cases in {request.data}; found "
                         f"{len(kept)}" + (f" (first error: {first})" if first else ""))
    labels = torch.tensor([cases.scans.labels[i] for i in kept], dtype=torch.long)
    k = int(labels.max()) + 1
    names = tuple(class_names) if class_names else tuple(str(j) for j in range(k))
    groups = read_groups(request.labels, cases.scans.names)
    if groups is not None:  # no patient in two splits
        from medlens.data.formats.text import split_by_group

        keys = [groups[i] or cases.scans.names[i] for i in kept]
        parts = split_by_group(keys, val=FOLDER_SPLIT[1], test=1 - sum(FOLDER_SPLIT), seed=request.seed)
        splits = {s: torch.tensor(p, dtype=torch.long) for s, p in zip(("train", "val", "test"), parts)}
        if any(len(v) == 0 for v in splits.values()):
            raise InputError(f"the group column of {request.labels} has too few groups for training, validation and test splits")
    else:
        order = torch.randperm(len(kept), generator=generator(request.seed, "train-split"))
        n_train = max(1, int(round(FOLDER_SPLIT[0] * len(kept))))
        n_val = max(1, int(round(FOLDER_SPLIT[1] * len(kept))))
        n_train = min(n_train, len(kept) - n_val - 1)
        splits = {"train": order[:n_train], "val": order[n_train:n_train + n_val], "test": order[n_train + n_val:]}
    with tempfile.TemporaryDirectory(prefix="medlens-train-") as scratch:
        path = Path(scratch) / "scans.npz"
        arrays: dict[str, np.ndarray] = {"class_names": np.asarray(names)}
        spatial = x.ndim - 2
        for split, idx in splits.items():
            inputs = x[idx].float().numpy()
            if spatial == 1:
                arrays[f"{split}_signals"] = inputs
            else:
                arrays[f"{split}_images"] = np.moveaxis(inputs, 1, -1)
                arrays["spatial_dims"] = np.asarray(spatial)
            arrays[f"{split}_labels"] = labels[idx].numpy()
        np.savez(path, **arrays)
        trained = train(request.arch, str(path), epochs=request.epochs, seed=request.seed,
                        progress=not request.quiet)
    meta = trained.meta
    shape = tuple(int(v) for v in x.shape[1:])
    stored = recipe if recipe.size is not None or recipe.spacing is not None else recipe.replace(size=shape[1:])
    if not stored.windows and stored.channels is None:
        stored = stored.replace(channels=shape[0])
    meta.update(data=str(request.data), recipe=stored.to_dict(), class_names=list(names),
                cases={"train": len(splits["train"]), "val": len(splits["val"]), "test": len(splits["test"]),
                       "unlabelled": len(cases) - len(labelled), "unreadable": len(failed)},
                split="by group (the labels file's group column)" if groups is not None else "by case, at random",
                # positions in the folder's sorted case list (not names: a file name may name a patient)
                split_positions={s: sorted(kept[int(i)] for i in idx) for s, idx in splits.items()})
    trained.summary = trained.summary.replace(str(path), str(request.data))
    return trained
