"""Training loop for the reference classifiers, with validation accuracy and AUROC."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from medlens.core.random import generator
from medlens.core import engine
from medlens.core.targets import probabilities
from medlens.models.metrics import accuracy, macro_auroc

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


@dataclass
class Scores:
    """Quality of a classifier on one split."""

    accuracy: float
    auroc: float
    probabilities: torch.Tensor = field(repr=False)

    def as_dict(self) -> dict[str, float]:
        return {"accuracy": self.accuracy, "auroc": self.auroc}


def evaluate_classifier(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> Scores:
    """Accuracy and (macro) AUROC of ``model`` on ``inputs`` ``(N, ...)`` with ``labels`` ``(N,)``."""
    was_training = model.training
    model.eval()
    try:
        probs = probabilities(engine.forward(model, inputs)).cpu()
    finally:
        model.train(was_training)
    return Scores(accuracy(probs, labels), macro_auroc(probs, labels), probs)


def shift_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random small shifts (up to 2 elements per spatial axis): cheap, label-preserving."""
    shifts = torch.randint(-2, 3, (x.ndim - 2,), generator=gen).tolist()
    return torch.roll(x, shifts=shifts, dims=tuple(range(2, x.ndim)))


def train_classifier(
    model: nn.Module,
    train_inputs: torch.Tensor,
    train_labels: torch.Tensor,
    val_inputs: torch.Tensor,
    val_labels: torch.Tensor,
    *,
    epochs: int = 10,
    lr: float = 3e-3,
    batch_size: int = 64,
    weight_decay: float = 1e-4,
    seed: int = 0,
    augment: Augment | None = None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    sample_weights: torch.Tensor | None = None,
    progress: bool = True,
) -> list[dict[str, float]]:
    """Train with AdamW and a cosine schedule; keep the weights of the best validation AUROC.

    Parameters
    ----------
    train_inputs, val_inputs : torch.Tensor
        ``(N, ...)`` model inputs.
    train_labels, val_labels : torch.Tensor
        ``(N,)`` int64 class indices.
    seed : int
        Seeds initial shuffling and augmentation; the same seed gives the same model.
    sample_weights : torch.Tensor, optional
        ``(N,)`` non-negative weights: each epoch then draws ``N`` training samples with
        replacement in proportion to them (balanced sampling: weight ``1 / class count``)
        instead of a permutation.

    Returns
    -------
    list of dict
        One entry per epoch: ``loss``, ``val_accuracy``, ``val_auroc``.
    """
    gen = generator(seed, "batches")
    if sample_weights is not None:
        sample_weights = torch.as_tensor(sample_weights, dtype=torch.float64)
        if sample_weights.shape != (len(train_inputs),) or (sample_weights < 0).any() or sample_weights.sum() <= 0:
            raise ValueError(f"sample_weights must be {len(train_inputs)} non-negative weights, not all zero")
    loss_fn = loss_fn or nn.functional.cross_entropy
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = max(1, (len(train_inputs) + batch_size - 1) // batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch, pct_start=0.2
    )
    history: list[dict[str, float]] = []
    best_state, best_key = None, (-1.0, -1.0)
    bar = tqdm(range(epochs), desc="training", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        model.train()
        if sample_weights is None:
            order = torch.randperm(len(train_inputs), generator=gen)
        else:
            order = torch.multinomial(sample_weights, len(train_inputs), replacement=True, generator=gen)
        total = 0.0
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            xb, yb = train_inputs[idx], train_labels[idx]
            if augment is not None:
                xb = augment(xb, gen)
            loss = loss_fn(model(xb), yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach()) * len(idx)
        scores = evaluate_classifier(model, val_inputs, val_labels)
        entry = {
            "epoch": epoch + 1,
            "loss": total / len(order),
            "val_accuracy": scores.accuracy,
            "val_auroc": scores.auroc,
        }
        history.append(entry)
        bar.set_postfix(loss=f"{entry['loss']:.3f}", val_acc=f"{scores.accuracy:.3f}", val_auroc=f"{scores.auroc:.3f}")
        key = (scores.auroc if scores.auroc == scores.auroc else 0.0, scores.accuracy)
        if key > best_key:
            best_key, best_state = key, copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return history
