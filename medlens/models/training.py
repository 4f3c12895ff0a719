"""Training loop for the reference classifiers, with validation accuracy and AUROC."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import torch
from torch import nn

from medlens.core.random import generator
from medlens.core import engine
from medlens.core.progress import SILENT, Progress
from medlens.core.targets import probabilities
from medlens.models.metrics import accuracy, finding_aurocs, macro_auroc

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
    """Accuracy and (macro) AUROC of ``model`` on ``inputs`` ``(N, ...)`` with ``labels`` ``(N,)``.

    Multi-label ``labels`` ``(N, K)`` of 0/1 (one column per finding) are scored per finding on
    each output's own sigmoid: the accuracy of deciding each finding at 0.5, and the AUROC, both
    averaged over the findings (the AUROC over those present in some cases and absent in others)."""
    was_training = model.training
    model.eval()
    try:
        output = engine.forward(model, inputs)
    finally:
        model.train(was_training)
    if labels.ndim == 2:
        probs = torch.sigmoid(output).cpu()
        values = [v for v in finding_aurocs(probs, labels) if v == v]
        mean_auroc = float(sum(values) / len(values)) if values else float("nan")
        return Scores(float(((probs >= 0.5) == (labels > 0.5)).float().mean()), mean_auroc, probs)
    probs = probabilities(output).cpu()
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
    progress: bool | Progress = True,
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
        optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch,
        pct_start=warmup_share(epochs * steps_per_epoch, 0.2),
    )
    def batches(epoch: int):
        if sample_weights is None:
            order = torch.randperm(len(train_inputs), generator=gen)
        else:
            order = torch.multinomial(sample_weights, len(train_inputs), replacement=True, generator=gen)
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            xb, yb = train_inputs[idx], train_labels[idx]
            yield (augment(xb, gen) if augment is not None else xb), yb

    def validate() -> dict[str, float]:
        scores = evaluate_classifier(model, val_inputs, val_labels)
        return {"val_accuracy": scores.accuracy, "val_auroc": scores.auroc}

    history = fit(
        model, batches, lambda batch: (loss_fn(model(batch[0]), batch[1]), len(batch[1])),
        epochs=epochs, optimizer=optimizer, scheduler=scheduler, validate=validate,
        # the best validation AUROC (NaN counts as 0), ties broken by accuracy
        score=lambda e: (e["val_auroc"] if e["val_auroc"] == e["val_auroc"] else 0.0, e["val_accuracy"]),
        progress=as_progress_flag(progress),
    )
    model.eval()
    return history


def warmup_share(steps: int, share: float) -> float:
    """``OneCycleLR``'s ``pct_start`` for ``steps`` steps: ``share``, unless its warm-up would end
    after exactly one step (``share * steps - 1 == 0``, which ``OneCycleLR`` divides by: five
    steps at 0.2, as ``--epochs 5`` on fewer than 65 training cases gives); then two steps."""
    return 2.0 / steps if float(share * steps) - 1 == 0 and steps >= 2 else share


def as_progress_flag(progress: "bool | Progress") -> Progress:
    """A :class:`Progress` from the ``progress`` argument of a training function (a bool or a Progress)."""
    return progress if isinstance(progress, Progress) else Progress(quiet=not progress)


def fit(
    model: nn.Module | None,
    batches: Callable[[int], Iterable[Any]],
    step_loss: Callable[[Any], tuple],
    *,
    epochs: int,
    optimizer: torch.optim.Optimizer,
    scheduler: Any = None,
    scheduler_interval: str = "step",
    validate: Callable[[], dict[str, float]] | None = None,
    score: Callable[[dict[str, float]], Any] | None = None,
    clip_grad: float | None = None,
    before_epoch: Callable[[int], None] | None = None,
    progress: Progress = SILENT,
    desc: str = "training",
) -> list[dict[str, Any]]:
    """The one training loop: ``epochs`` passes over ``batches(epoch)``, one optimiser step per batch.

    Parameters
    ----------
    model : nn.Module or None
        Put in train mode each epoch (eval mode for ``validate``); its weights are kept for
        ``score``. ``None`` when the optimiser holds free tensors (the concept autoencoder's
        parallel restarts), which then has no modes and no model selection.
    batches : callable
        ``batches(epoch)`` yields the epoch's batches (it owns shuffling, sampling, augmentation).
    step_loss : callable
        ``step_loss(batch)`` returns ``(loss, size)`` - the batch's mean loss and its number of
        samples - or ``(loss, size, terms)`` with a dict of further terms (numbers or tensors)
        whose sample-weighted epoch means join the epoch's record.
    scheduler : optional
        Stepped after every optimiser step (``scheduler_interval="step"``) or after every epoch
        (``"epoch"``).
    validate : callable, optional
        Called in eval mode without gradients after each epoch; its numbers join the epoch's record.
    score : callable, optional
        Higher is better: the weights of the epoch with the best ``score(record)`` are restored at
        the end (early-stopping by model selection). Without it the last weights stay.
    clip_grad : float, optional
        Clip the gradient norm of the trained parameters to this value.
    before_epoch : callable, optional
        Called after ``model.train()`` each epoch (to freeze batch-norm statistics, say).

    Returns
    -------
    list of dict
        One record per epoch: ``epoch``, ``loss`` (mean over the samples seen), the epoch means
        of the step's further terms and the numbers of ``validate``.
    """
    if scheduler_interval not in ("step", "epoch"):
        raise ValueError(f"scheduler_interval must be 'step' or 'epoch', got {scheduler_interval!r}")
    if score is not None and model is None:
        raise ValueError("model selection (score=) needs the model")
    params = [p for group in optimizer.param_groups for p in group["params"]]
    history: list[dict[str, Any]] = []
    best_state, best_key = None, None
    for epoch in progress.over(range(epochs), desc, unit="epoch"):
        if model is not None:
            model.train()
        if before_epoch is not None:
            before_epoch(epoch)
        total, seen = 0.0, 0
        sums: dict[str, Any] = {}
        for batch in batches(epoch):
            loss, size, *rest = step_loss(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad is not None:
                nn.utils.clip_grad_norm_(params, clip_grad)
            optimizer.step()
            if scheduler is not None and scheduler_interval == "step":
                scheduler.step()
            total += float(loss.detach()) * size
            seen += size
            for name, value in (rest[0] if rest else {}).items():
                value = value.detach() if isinstance(value, torch.Tensor) else value
                sums[name] = sums.get(name, 0.0) + value * size
        if scheduler is not None and scheduler_interval == "epoch":
            scheduler.step()
        entry: dict[str, Any] = {"epoch": epoch + 1, "loss": total / max(1, seen)}
        for name, value in sums.items():
            mean = value / max(1, seen)
            entry[name] = float(mean) if not isinstance(mean, torch.Tensor) or mean.ndim == 0 else mean
        if validate is not None:
            if model is not None:
                model.eval()
            with torch.no_grad():
                entry.update(validate())
        history.append(entry)
        if score is not None:
            key = score(entry)
            if best_key is None or key > best_key:
                best_key, best_state = key, copy.deepcopy(model.state_dict())
    if best_state is not None:
        model.load_state_dict(best_state)
    return history
