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
from medlens.data.cases import data_words, is_dataset, open_cases
from medlens.data.notes_cases import is_notes_file
from medlens.errors import InputError, MedlensError

#: Shares of a folder's labelled cases that go to training and validation (the rest: test).
FOLDER_SPLIT = (0.7, 0.15)


@dataclass(frozen=True)
class TrainRequest:
    """The arguments of ``medlens train``: ``data`` a bundled name, an npz path, a simulator name
    (``--arch scinet`` / ``groupinn``) or a folder of scans with ``labels`` (CSV ``case,label``,
    a class index or a class name); ``recipe`` how scans become inputs (stored in the model);
    ``class_names`` the classes' names in label order (``"normal,pneumonia"``), stored in the
    model file in place of the data's own; ``memory_mb`` the readers' decoding limit. Unreadable
    scans are left out and listed in :attr:`TrainResult.failures` by their pseudonymous ids."""

    data: str
    out: str
    arch: str | None = None  # default: cnn; attention-rnn for notes and records
    epochs: int = 10
    labels: str | None = None
    recipe: RecipeOptions = field(default_factory=RecipeOptions)
    class_names: str | tuple[str, ...] | None = None
    seed: int = 0
    quiet: bool = True
    memory_mb: float | None = None
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
        names = self.names()
        if names is not None and (not names or any(not n for n in names) or len(set(names)) != len(names)):
            raise MedlensError(f"--class-names takes distinct non-empty names separated by commas, got {self.class_names!r}")

    def names(self) -> tuple[str, ...] | None:
        """``class_names`` as a tuple (``None`` when not given)."""
        if self.class_names is None:
            return None
        raw = self.class_names.split(",") if isinstance(self.class_names, str) else self.class_names
        return tuple(str(n).strip() for n in raw)


@dataclass
class TrainResult:
    """The model written, its metadata, the summary line and a warning (or ``None``)."""

    out: str
    meta: dict[str, Any]
    summary: str
    warning: str | None = None
    lines: list[str] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


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
    if request.names() is not None and is_dataset(request.data):  # before any training
        from medlens.data.cases import labelled_set

        _name_classes({"class_names": list(labelled_set(request.data, "train").class_names)}, request.names())
    if is_dataset(request.data) or request.labels is None and not Path(request.data).is_dir():
        trained = train(request.arch, request.data, epochs=request.epochs, seed=request.seed,
                        progress=not request.quiet, recipe=_dataset_recipe(request.recipe))
        failures: list[tuple[str, str]] = []
    else:
        trained, failures = _train_on_scans(request, train)
    _name_classes(trained.meta, request.names())
    trained.meta.setdefault("input", _input_facts(request, trained.meta))
    save_model(trained.model, request.out, trained.meta)
    return TrainResult(request.out, trained.meta, f"{trained.summary} -> {request.out}", trained.warning,
                       list(trained.notes), failures)


def _name_classes(meta: dict[str, Any], names: tuple[str, ...] | None) -> None:
    """Store ``--class-names`` in ``meta``, one name per class the model was trained on."""
    if names is None:
        return
    known = len(meta.get("class_names") or ())
    if known and len(names) != known:
        raise MedlensError(f"--class-names gives {len(names)} name(s) but the model has {known} classes")
    meta["class_names"] = list(names)


def _input_facts(request: TrainRequest, meta: dict[str, Any]) -> dict[str, Any] | None:
    """The input facts of a model whose recipe did not record them (simulators, InterpNet):
    what its input shape implies."""
    from medlens.data.kinds import facts_of_model

    facts = facts_of_model(meta)
    return None if facts is None else facts.to_dict()


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


def _train_on_scans(request: TrainRequest, train: Any) -> tuple[Any, list[tuple[str, str]]]:
    """Read a folder's labelled scans through the recipe, split them, train through the data-set
    route, and store the scans' recipe and class names in the model's metadata; returns the
    trained result and the unreadable cases ``(id, error)``."""
    from medlens.app.reference_cases import inputs_digest
    from medlens.core.random import generator

    if request.labels is None:
        raise MedlensError("training on scans needs --labels FILE (CSV with columns case,label, or one column per "
                           "finding)")
    recipe = _scan_recipe(request.recipe)
    scan_labels = _scan_labels(request, recipe)
    cases = scan_labels.cases
    labelled = [i for i, label in enumerate(scan_labels.labels) if label is not None]
    x, kept, failed = cases.scans.load(labelled)
    failed = {i: cases.withheld(i, err) for i, err in failed.items()}
    if x is None or len(kept) < 3:
        first = next(iter(failed.values()), "")
        raise InputError(f"training needs at least 3 readable labelled cases in {request.data}; found "
                         f"{len(kept)}" + (f" (first error: {first})" if first else ""))
    if scan_labels.multilabel:  # (N, K) of 0/1: one sigmoid per finding
        labels = torch.as_tensor(np.stack([scan_labels.labels[i] for i in kept]), dtype=torch.float32)
    else:
        labels = torch.tensor([scan_labels.labels[i] for i in kept], dtype=torch.long)
    k = int(labels.shape[1]) if labels.ndim == 2 else int(labels.max()) + 1
    names = tuple(scan_labels.class_names) if scan_labels.class_names else tuple(str(j) for j in range(k))
    groups, split_words = _patient_groups(cases, kept, scan_labels.groups)
    if groups is not None:  # no patient in two splits
        from medlens.data.formats.text import split_by_group

        keys = [groups[i] or cases.scans.names[i] for i in kept]
        parts = split_by_group(keys, val=FOLDER_SPLIT[1], test=1 - sum(FOLDER_SPLIT), seed=request.seed)
        splits = {s: torch.tensor(p, dtype=torch.long) for s, p in zip(("train", "val", "test"), parts)}
        if any(len(v) == 0 for v in splits.values()):
            raise InputError(f"{split_words} gives too few patients for training, validation and test splits")
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
    if stored.slice is not None:  # the slice was the training scans' choice: each later input names its own
        stored = type(stored).from_dict({**stored.to_dict(), "slice": None})
    from medlens.app.recipes import trained_summary
    from medlens.data.kinds import facts_of_training_data

    facts = facts_of_training_data(x, str(request.data), native=_native_facts(cases, kept), fs=stored.fs,
                                   windows=stored.windows)
    meta.update(data=data_words(request.data), recipe=stored.to_dict(), class_names=list(names), input=facts.to_dict(),
                cases={"train": len(splits["train"]), "val": len(splits["val"]), "test": len(splits["test"]),
                       "unlabelled": len(cases) - len(labelled), "unreadable": len(failed)},
                split=f"by patient ({split_words})" if groups is not None else "by case, at random",
                # positions in the folder's sorted case list (not names: a file name may name a patient)
                split_positions={s: sorted(kept[int(i)] for i in idx) for s, idx in splits.items()},
                # which folder the positions are of: basis and concepts use them only on the same inputs
                split_digests={"train": inputs_digest(x[_by_position(splits["train"], kept)])})
    trained.summary = trained_summary(request.arch, str(request.data), meta)  # the scans, not the temporary npz
    trained.notes = [*scan_labels.notes, *trained.notes]
    if groups is not None:
        several = _patients_with_several(groups, kept)
        trained.summary += (f"; split by patient ({split_words}): {several} patient(s) with several scans, each patient's "
                            "scans in one split")
    return trained, [(cases.names[i], err) for i, err in sorted(failed.items())]


@dataclass
class _ScanLabels:
    """A folder's cases with their labels: per case a class index, a ``(K,)`` 0/1 row of findings
    (``multilabel``) or ``None``; the class (finding) names; the labels file's patients (``None``:
    the case workflow's own, :func:`_patient_groups`); lines for ``train``'s output."""

    cases: Any
    labels: list[Any]
    class_names: tuple[str, ...]
    multilabel: bool = False
    groups: list[str | None] | None = None
    notes: list[str] = field(default_factory=list)


def _scan_labels(request: TrainRequest, recipe: Any) -> _ScanLabels:
    """Open the folder's cases and read their labels: ``case,label`` (one class per case), or several
    findings per case (NIH's ``Finding Labels``, or one column per finding: a multi-label model,
    :mod:`medlens.data.formats.finding_labels`), told apart by the labels file's columns."""
    from medlens.data.formats.finding_labels import is_findings_table, read_finding_table
    from medlens.data.formats.folders import class_names_in

    if not is_findings_table(request.labels):
        class_names = request.names() or class_names_in(request.labels)
        cases = open_cases(request.data, recipe=recipe, labels=request.labels, class_names=class_names, what="data",
                           memory_mb=request.memory_mb)
        labels = list(cases.scans.labels)
        return _ScanLabels(cases, labels, tuple(class_names),
                           notes=_unmatched(cases.scans.rows_without_file, labels.count(None)))
    cases = open_cases(request.data, recipe=recipe, what="data", memory_mb=request.memory_mb)
    table = read_finding_table(request.labels, cases.scans.names)
    rows = [table.matrix[i] if table.labelled[i] else None for i in range(len(cases))]
    note = (f"multi-label: {len(table.findings)} findings read from the labels file ({table.layout}), one sigmoid "
            "each")
    if table.uncertain or table.blank:
        note += (f"; {table.uncertain} uncertain (-1) and {table.blank} blank value(s) read as absent (0: "
                 "CheXpert's U-Zeros)")
    return _ScanLabels(cases, rows, table.findings, True, table.groups,
                       [note, *_unmatched(table.without_file, table.labelled.count(False))])


def _unmatched(rows: int, scans: int) -> list[str]:
    """The lines telling how many rows of the labels file name no file of the folder (NIH's full
    table beside some of its images) and how many scans of the folder no row names: both left out
    (a scan without a row is not refused: a labels file for part of a folder is a usual layout, and
    the count shows a misnamed file); none when each matches."""
    from medlens.data.formats.folders import rows_without_file_note

    return rows_without_file_note(rows) + \
        ([f"{scans} scan(s) in the folder have no row in the labels file: left out (unlabelled)"] if scans else [])


def _patient_groups(cases: Any, kept: list[int],
                    groups: list[str | None] | None = None) -> tuple[list[str | None] | None, str]:
    """Each case's patient for the split, and where it was read: ``groups`` (a findings table's
    patient column), the labels file's ``group`` column, else the scans' DICOM PatientID (compared as digests, :mod:`medlens.data.patients`)
    when some patient has several of the ``kept`` scans; ``(None, "")`` when no patient is known
    to have two (a split at random keeps nothing apart)."""
    from medlens.data.patients import case_patients, known_patients

    if groups is not None:
        return groups, "the labels file's patient column"
    if cases.scans.groups is not None:
        return cases.scans.groups, "the labels file's group column"
    found = known_patients(case_patients(cases.scans, range(len(cases))))
    return (found, "the scans' DICOM PatientID") if _patients_with_several(found, kept) else (None, "")


def _patients_with_several(groups: list[str | None], kept: list[int]) -> int:
    """How many patients have more than one of the ``kept`` cases."""
    from collections import Counter

    return sum(n > 1 for n in Counter(groups[i] for i in kept if groups[i] is not None).values())


def _by_position(idx: torch.Tensor, kept: list[int]) -> torch.Tensor:
    """The rows ``idx`` of the loaded cases in the order of their positions in the folder."""
    return torch.as_tensor(sorted(idx.tolist(), key=lambda i: kept[int(i)]), dtype=torch.long)


#: Training scans read again for their native facts (shape, spacing, bit depth, modality).
NATIVE_SAMPLE = 64


def _native_facts(cases: Any, kept: list[int]) -> dict[str, Any]:
    """What the training scans were as they came: the most common native shape and spacing (with,
    per axis, the smallest and largest size when the shapes varied), the largest bit depth and the
    modalities, over up to :data:`NATIVE_SAMPLE` of the cases."""
    from collections import Counter

    shapes: Counter = Counter()
    spacings: Counter = Counter()
    bits: list[int] = []
    modalities: set[str] = set()
    for i in kept[:NATIVE_SAMPLE]:
        try:
            reading = cases.case(i).reading
        except MedlensError:
            continue
        shapes[tuple(reading.get("native_shape") or ())] += 1
        if reading.get("spacing"):
            spacings[tuple(round(v, 4) for v in reading["spacing"])] += 1
        if reading.get("bit_depth"):
            bits.append(int(reading["bit_depth"]))
        if reading.get("modality"):
            modalities.add(str(reading["modality"]).upper())
    common = list(shapes.most_common(1)[0][0]) if shapes else None
    alike = [shape for shape in shapes if common is not None and len(shape) == len(common)]
    varied = len(alike) > 1
    return {"shape": common,
            "smallest": [min(axis) for axis in zip(*alike)] if varied else None,
            "largest": [max(axis) for axis in zip(*alike)] if varied else None,
            "spacing": list(spacings.most_common(1)[0][0]) if spacings else None,
            "bit_depth": max(bits) if bits else None, "modality": sorted(modalities)}
