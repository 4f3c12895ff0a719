"""Train a reference model on a data set by name: the recipe behind ``medlens train``."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from medlens.errors import UnknownNameError
from medlens.models.attention_rnn import build_for_inputs as _build_attention_rnn
from medlens.models.cnn import CNN
from medlens.models.training import evaluate_classifier, shift_augment, train_classifier

# arch name -> builder(train inputs, number of classes) -> model
ModelBuilder = Callable[[torch.Tensor, int], nn.Module]


def _build_cnn(inputs: torch.Tensor, num_classes: int) -> nn.Module:
    spatial_dims = inputs.ndim - 2
    widths = (16, 32, 64) if spatial_dims < 3 else (8, 16, 32)
    return CNN(spatial_dims, inputs.shape[1], num_classes, widths=widths, input_shape=tuple(inputs.shape[1:]))


BUILDERS: dict[str, ModelBuilder] = {"cnn": _build_cnn, "attention-rnn": _build_attention_rnn}


def train_on_dataset(
    data: str, *, arch: str = "cnn", epochs: int = 10, seed: int = 0, progress: bool = True, **train_options: Any
) -> tuple[nn.Module, dict[str, Any]]:
    """Train ``arch`` on the train split of ``data`` (a bundled name or an npz path).

    Returns
    -------
    (model, meta)
        The model with the best validation AUROC, and metadata to store with it: data set,
        class names, input shape, training history, validation and test scores.
    """
    from medlens.data import load_dataset

    if arch not in BUILDERS:
        raise UnknownNameError(f"unknown architecture {arch!r}; known: {', '.join(sorted(BUILDERS))}")
    train, val, test = (load_dataset(data, split) for split in ("train", "val", "test"))
    num_classes = max(len(train.class_names), int(train.labels.max()) + 1)
    torch.manual_seed(seed)
    model = BUILDERS[arch](train.inputs, num_classes)
    augment = shift_augment if train.inputs.is_floating_point() else None
    history = train_classifier(
        model, train.inputs, train.labels, val.inputs, val.labels,
        epochs=epochs, seed=seed, augment=augment, progress=progress, **train_options,
    )
    val_scores = evaluate_classifier(model, val.inputs, val.labels)
    calibration = _calibration(model, val.inputs, val.labels)
    test_scores = evaluate_classifier(model, test.inputs, test.labels)
    meta = {
        "data": str(data),
        "class_names": list(train.class_names),
        "input_shape": list(train.inputs.shape[1:]),
        "epochs": epochs,
        "seed": seed,
        "history": history,
        "val": val_scores.as_dict(),
        "test": test_scores.as_dict(),
        "calibration": calibration,
    }
    return model, meta


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
