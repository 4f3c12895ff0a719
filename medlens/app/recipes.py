"""Train a reference model on a data set by name: the recipe behind ``medlens train``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from medlens.core.random import seeded
from medlens.core.registry import Registry
from medlens.data.recipe import Recipe
from medlens.models.attention_gated import build_for_inputs as _build_attention_gated
from medlens.models.attention_rnn import build_for_inputs as _build_attention_rnn
from medlens.models.cnn import CNN
from medlens.models.vit import build_for_inputs as _build_vit
from medlens.models.text_transformer import build_for_inputs as _build_text_transformer
from medlens.models.training import evaluate_classifier, shift_augment, train_classifier
from medlens.models.metrics import majority_share

# arch name -> builder(train inputs, number of classes) -> model
ModelBuilder = Callable[[torch.Tensor, int], nn.Module]


def _build_cnn(inputs: torch.Tensor, num_classes: int) -> nn.Module:
    spatial_dims = inputs.ndim - 2
    widths = (16, 32, 64) if spatial_dims < 3 else (8, 16, 32)
    return CNN(spatial_dims, inputs.shape[1], num_classes, widths=widths, input_shape=tuple(inputs.shape[1:]))


#: How ``medlens train --arch NAME`` builds a model for a data set.
BUILDERS: Registry[ModelBuilder] = Registry("architecture recipe")
BUILDERS.add("cnn", _build_cnn)
BUILDERS.add("attention-rnn", _build_attention_rnn)
BUILDERS.add("attention-gated", _build_attention_gated)
BUILDERS.add("vit", _build_vit)
BUILDERS.add("transformer", _build_text_transformer)


def default_recipe(inputs: torch.Tensor) -> Recipe:
    """The recipe that describes a data set's stored inputs ``(N, C, *spatial)``.

    Images stored in ``[0, 1]`` (MedMNIST: 8-bit divided by 255) get ``normalize="unit"``, so a
    user's 8-bit PNG is divided by 255 exactly as in training; other images min-max; signals
    stored z-scored per sample (ECG5000) get ``"zscore"``.
    """
    c, spatial = int(inputs.shape[1]), tuple(int(s) for s in inputs.shape[2:])
    if len(spatial) == 1:
        flat = inputs.float().reshape(inputs.shape[0], -1)
        zscored = bool((flat.mean(1).abs() < 0.05).all() and ((flat.std(1) - 1).abs() < 0.05).all())
        return Recipe(normalize="zscore" if zscored else "none", channels=c, size=spatial)
    in_unit = bool(inputs.min() >= 0 and inputs.max() <= 1)
    return Recipe(normalize="unit" if in_unit else "minmax", channels=c, size=spatial)


def apply_recipe(inputs: torch.Tensor, recipe: Recipe) -> torch.Tensor:
    """Run every stored input ``(N, C, *spatial)`` through ``recipe``, as explain will run a file.

    Each input is wrapped as the record a reader would return (a grey image or volume, or a
    signal of ``C`` leads at the recipe's rate) and passed to
    :func:`medlens.data.recipe.prepare`: train and explain share one code path.
    """
    from medlens.data.formats.common import Volume
    from medlens.data.recipe import prepare
    from medlens.data.formats.signals import Signal

    out = []
    for x in inputs.float():
        if x.ndim == 2:
            record = Signal(x, float(recipe.fs or 1.0), tuple(recipe.leads or (f"ch{k}" for k in range(x.shape[0]))))
        else:
            record = Volume(x[0] if x.shape[0] == 1 else x, (1.0,) * (x.ndim - 1), {"Format": "NumPy"},
                            channels=int(x.shape[0]), format="NumPy")
        out.append(prepare(record, recipe).x[0])
    return torch.stack(out)


def train_on_dataset(
    data: str, *, arch: str = "cnn", epochs: int = 10, seed: int = 0, progress: bool = True,
    recipe: Recipe | None = None, **train_options: Any
) -> tuple[nn.Module, dict[str, Any]]:
    """Train ``arch`` on the train split of ``data`` (a bundled name or an npz path).

    Parameters
    ----------
    recipe : Recipe, optional
        Preprocessing applied to every stored input before training (e.g. CT windows on an npz of
        HU slices), with :func:`apply_recipe`; stored in the model file so that explain, evaluate
        and audits apply the same one to a user's files. Default: :func:`default_recipe`, which
        describes the inputs as stored.

    Returns
    -------
    (model, meta)
        The model with the best validation AUROC, and metadata to store with it: data set,
        class names, input shape, the input facts (:func:`medlens.data.kinds.facts_of_training_data`:
        kind, channels, native geometry, modality, sampling rate), the recipe, training history, validation and test scores, the
        validation reliability table and the training data's statistics for the case report's
        check of unfamiliar inputs (:func:`medlens.evaluation.familiarity.familiarity_reference`).
    """
    from medlens.data import LabelledSet, load_dataset

    builder = BUILDERS.get(arch)  # an unknown name fails before any data is read
    train, val, test = (load_dataset(data, split) for split in ("train", "val", "test"))
    if recipe is None:
        recipe = default_recipe(train.inputs) if train.inputs.is_floating_point() else None
    else:
        train, val, test = (
            LabelledSet(apply_recipe(s.inputs, recipe), s.labels, None, s.name, s.class_names) for s in (train, val, test)
        )
        recipe = recipe.replace(size=tuple(int(v) for v in train.inputs.shape[2:]),
                                channels=None if recipe.windows else int(train.inputs.shape[1]))
    multilabel = train.labels.ndim == 2  # (N, K) of 0/1: one sigmoid per finding (medlens.app.train_findings)
    if multilabel:
        from medlens.app.train_findings import check_findings, finding_loss

        check_findings(train.labels, train.class_names)
        loss_fn, pos_weight = finding_loss(train.labels)
        train_options.setdefault("loss_fn", loss_fn)
        num_classes = int(train.labels.shape[1])
    else:
        _two_classes(train.labels, train.class_names)
        num_classes = max(len(train.class_names), int(train.labels.max()) + 1)
    augment = shift_augment if train.inputs.is_floating_point() else None
    # weight initialisation and dropout draw from torch's global generator: fork it for the run
    with seeded(seed):
        model = builder(train.inputs, num_classes)
        history = train_classifier(
            model, train.inputs, train.labels, val.inputs, val.labels,
            epochs=epochs, seed=seed, augment=augment, progress=progress, **train_options,
        )
    val_scores = evaluate_classifier(model, val.inputs, val.labels)
    calibration = None if multilabel else _calibration(model, val.inputs, val.labels)  # its table reads one class per case
    from medlens.evaluation.familiarity import familiarity_reference

    familiarity = familiarity_reference(model, train.inputs, val.inputs)
    test_scores = evaluate_classifier(model, test.inputs, test.labels)
    from medlens.data.cases import data_words
    from medlens.data.kinds import facts_of_training_data

    facts = facts_of_training_data(train.inputs, str(data), fs=None if recipe is None else recipe.fs,
                                   windows=() if recipe is None else recipe.windows)
    meta = {
        "data": data_words(data),
        "class_names": list(train.class_names),
        "input_shape": list(train.inputs.shape[1:]),
        "input": facts.to_dict(),
        "recipe": None if recipe is None else recipe.to_dict(),
        "epochs": epochs,
        "seed": seed,
        "history": history,
        "val": _split_record(val_scores, val, multilabel),
        "test": _split_record(test_scores, test, multilabel),
        "calibration": calibration,
        "familiarity": familiarity,
    }
    if multilabel:
        meta.update(multilabel=True, pos_weight=pos_weight)
    return model, meta


def _split_record(scores: Any, split: Any, multilabel: bool) -> dict[str, Any]:
    """A split's scores as the model file stores them (per finding too for a multi-label model)."""
    if multilabel:
        from medlens.app.train_findings import split_record

        return split_record(scores.probabilities, split.labels, split.class_names, scores)
    return {**scores.as_dict(), "majority_share": majority_share(split.labels)}


def _two_classes(labels: torch.Tensor, class_names: Any) -> None:
    """Refuse training labels of one class only: such a model (one output, or one class it always
    answers) explains nothing and every later command would fail on it with another message."""
    from medlens.errors import InputError

    if len(labels) and len(labels.unique()) < 2:
        k = int(labels[0])
        name = class_names[k] if k < len(class_names) else f"class {k}"
        raise InputError(f"the training split holds one class only ({name}); give cases of at least two classes")


#: A validation AUROC from which a model counts as ranking the classes, whatever its accuracy: the
#: lower bound of "acceptable discrimination" in Hosmer and Lemeshow's Applied Logistic Regression.
RANKS_CLASSES_AUROC = 0.7


def _below_majority(val: dict) -> bool:
    share = val.get("majority_share")
    return share is not None and "accuracy" in val and val["accuracy"] <= share + 0.01


def _ranks_classes(val: dict) -> bool:
    auroc = val.get("auroc")
    return isinstance(auroc, (int, float)) and auroc == auroc and auroc >= RANKS_CLASSES_AUROC


def chance_fact(val: dict) -> str | None:
    """"the model is no better than always answering the most frequent class ..." when the
    validation accuracy is not above the majority share and its AUROC does not show that it ranks
    the classes either (``val`` as stored in the model file's ``meta["val"]``), else ``None``.

    A model that ranks the classes well (AUROC >= :data:`RANKS_CLASSES_AUROC`) but whose decisions
    fall below the majority share on imbalanced data is not at chance: :func:`threshold_fact` says
    what is true of it. A multi-label model's record (``val["findings"]``) is read per finding
    (:func:`medlens.app.train_findings.finding_chance_fact`)."""
    if "findings" in val:
        from medlens.app.train_findings import finding_chance_fact

        return finding_chance_fact(val)
    if not _below_majority(val) or _ranks_classes(val):
        return None
    return (f"the model is no better than always answering the most frequent class on the validation split "
            f"(accuracy {val['accuracy']:.3f}, most frequent class {val['majority_share']:.3f})")


def threshold_fact(val: dict) -> str | None:
    """When a model ranks the classes well but its accuracy is not above the majority share (a
    decision threshold set for balanced classes, as balanced sampling trains, on imbalanced data:
    MIT-BIH beats, AUROC 0.990, accuracy 0.968 against 0.988): its probabilities mean more than its
    decisions. ``None`` otherwise (and for a multi-label model, whose findings :func:`chance_fact` reads)."""
    if "findings" in val or not _below_majority(val) or not _ranks_classes(val):
        return None
    below = val["accuracy"] < val["majority_share"]  # within the margin above it, no claim on which class it favours
    return (f"the model ranks the classes well on the validation split (AUROC {val['auroc']:.3f}) but its decisions "
            f"are right {'less' if below else 'no more'} often than always answering the most frequent class "
            f"(accuracy {val['accuracy']:.3f}, most frequent class {val['majority_share']:.3f})"
            f"{': it calls the rarer class more often than the data hold it' if below else ''}; "
            f"read its probabilities rather than its decisions")


def chance_warning(val: dict) -> str | None:
    """:func:`chance_fact` with the advice for whoever trains, or :func:`threshold_fact`, else ``None``."""
    fact = chance_fact(val)
    if fact is not None:
        return f"{fact}: train longer (--epochs) or check the data before explaining it"
    return threshold_fact(val)


def _calibration(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> dict:
    """Reliability table on the validation split, stored with the model for the case report."""
    from medlens.app.case_report import calibration_data
    from medlens.core.checks import evaluation_mode, model_outputs
    from medlens.core.targets import probabilities

    if inputs.is_floating_point():  # token ids stay integers
        inputs = inputs.to(next(iter(model.parameters())).dtype)
    with evaluation_mode(model), torch.inference_mode():
        probs = probabilities(model_outputs(model, inputs))
    return calibration_data(probs.cpu(), labels, split="validation")


# --- training recipes: ``medlens train --arch NAME`` is one lookup -------------------------------


@dataclass
class Trained:
    """What a training recipe returns: the model, its file's metadata and what ``train`` says.

    ``summary`` is the line printed before `` -> OUT``; ``notes`` are further stdout lines (the
    explanations' scores); ``warning`` a line for stderr (a model no better than chance), or None.
    """

    model: nn.Module
    meta: dict[str, Any]
    summary: str
    notes: list[str] = field(default_factory=list)
    warning: str | None = None


#: A training recipe: ``recipe(arch, data, *, epochs, seed, progress, recipe) -> Trained``.
TrainingRecipe = Callable[..., Trained]


def trained_summary(arch: str, data: str, meta: dict[str, Any]) -> str:
    """The line ``medlens train`` prints: validation and test accuracy and AUROC, the data named
    as the model file names them (:func:`medlens.data.cases.data_words`: no path, which may name a patient)."""
    from medlens.data.cases import data_words

    v, t = meta["val"], meta["test"]
    if meta.get("multilabel"):
        return (f"trained {arch} on {meta.get('data') or data_words(data)} ({len(meta['class_names'])} findings, one "
                f"sigmoid each): val macro {_auroc(v)}, mean accuracy {v['accuracy']:.3f} (each finding's majority "
                f"{v['majority_share']:.3f}); test macro {_auroc(t)}, mean accuracy {t['accuracy']:.3f} (each finding's "
                f"majority {t['majority_share']:.3f})")
    return (f"trained {arch} on {meta.get('data') or data_words(data)}: val accuracy {v['accuracy']:.3f}{majority_words(v)} "
            f"{_auroc(v)}; test accuracy {t['accuracy']:.3f}{majority_words(t)} {_auroc(t)}")


def majority_words(scores: dict[str, Any], digits: int = 3) -> str:
    """`` (most frequent class 0.711)``: what an accuracy is to be read against, when recorded
    (older model files record no share: nothing)."""
    share = scores.get("majority_share")
    return "" if share is None else f" (most frequent class {share:.{digits}f})"


def _auroc(scores: dict[str, Any]) -> str:
    """``AUROC 0.953``, or why there is none: a split of one class (a by-record split of few records)."""
    auroc = scores.get("auroc")
    if auroc is None or auroc != auroc:  # NaN
        return "AUROC not defined (one class in the split)"
    return f"AUROC {auroc:.3f}"


def _train_classifier_recipe(arch: str, data: str, *, epochs: int, seed: int, progress: Any = True,
                             recipe: Recipe | None = None) -> Trained:
    model, meta = train_on_dataset(data, arch=arch, epochs=epochs, seed=seed, progress=progress, recipe=recipe)
    notes = []
    if meta.get("multilabel"):
        from medlens.app.train_findings import finding_lines

        notes = finding_lines(meta)
    return Trained(model, meta, trained_summary(arch, data, meta), notes, warning=chance_warning(meta["val"]))


def _train_interpnet_recipe(arch: str, data: str, *, epochs: int, seed: int, progress: Any = True,
                            recipe: Recipe | None = None) -> Trained:
    from medlens.evaluation.familiarity import familiarity_reference
    from medlens.selfexplain.interpnet_training import load_lesion_split, train_on_lesions

    model, meta = train_on_lesions(data, epochs=epochs, seed=seed, progress=progress)
    # what its sentences are about: the case report says when a case is unlike these
    meta["familiarity"] = familiarity_reference(model, *(load_lesion_split(data, s).inputs for s in ("train", "val")))
    notes = [f"explanations ({decoding}): BLEU-4 {scores['bleu4']:.3f}, attribute accuracy "
             f"{scores['attribute_accuracy']['mean']:.3f}" for decoding, scores in meta.get("explanations", {}).items()]
    return Trained(model, meta, trained_summary(arch, data, meta), notes, chance_warning(meta["val"]))


def _train_system_recipe(arch: str, data: str, *, epochs: int, seed: int, progress: Any = True,
                         recipe: Recipe | None = None) -> Trained:
    from medlens.app.systems import train_system

    model, meta, summary = train_system(arch, data, epochs=epochs, seed=seed)
    return Trained(model, meta, summary)


#: architecture name -> training recipe (``medlens train --arch NAME``).
TRAINING: Registry[TrainingRecipe] = Registry("architecture")
for _name in BUILDERS.names():
    TRAINING.add(_name, _train_classifier_recipe)
TRAINING.add("interpnet", _train_interpnet_recipe)
TRAINING.add("scinet", _train_system_recipe)
TRAINING.add("groupinn", _train_system_recipe)


def train(arch: str, data: str, *, epochs: int = 10, seed: int = 0, progress: Any = True,
          recipe: Recipe | None = None) -> Trained:
    """Train architecture ``arch`` on ``data`` by its registered recipe (:data:`TRAINING`).

    ``progress`` is a bool or a :class:`medlens.core.progress.Progress`; ``recipe`` (the
    preprocessing) applies to the classifier recipes.
    """
    from medlens.errors import InputError

    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise InputError(f"--epochs must be at least 1, got {epochs}")
    return TRAINING.get(arch)(arch, data, epochs=epochs, seed=seed, progress=progress, recipe=recipe)
