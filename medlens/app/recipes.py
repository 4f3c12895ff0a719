"""Train a reference model on a data set by name: the recipe behind ``medlens train``."""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import nn

from medlens.core.random import seeded
from medlens.core.registry import Registry
from medlens.models.attention_rnn import build_for_inputs as _build_attention_rnn
from medlens.models.cnn import CNN
from medlens.models.training import evaluate_classifier, shift_augment, train_classifier

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

    builder = BUILDERS.get(arch)  # an unknown name fails before any data is read
    train, val, test = (load_dataset(data, split) for split in ("train", "val", "test"))
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
    }
    return model, meta
