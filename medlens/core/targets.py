"""Targets: what score of the model output an explanation explains.

Users pass an ``int`` (one class for the whole batch), a sequence or tensor (one class per
sample) or a callable from model output ``(B, K)`` to one score per sample ``(B,)``. They are
converted once, at the API boundary, into a :class:`Target`; after that no code branches on
target kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence, Union

import torch

from medlens.errors import TargetError

ScoreFn = Callable[[torch.Tensor], torch.Tensor]
TargetLike = Union[int, Sequence[int], torch.Tensor, ScoreFn, None]


@dataclass(frozen=True)
class Target:
    """One score per sample, taken from the model output.

    Parameters
    ----------
    classes : torch.Tensor or None
        ``(B,)`` int64 class index per row, or ``None`` when ``score_fn`` is used.
    score_fn : callable or None
        Maps output ``(B, K)`` to scores ``(B,)``; applied row-wise, so it must not mix rows.
    space : {"logit", "probability"}
        ``"probability"`` applies softmax (or a sigmoid for single-output models) before
        selecting the class: black-box methods such as RISE score probabilities.
    """

    classes: torch.Tensor | None = None
    score_fn: ScoreFn | None = None
    space: str = "logit"

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        """Scores ``(B,)`` for an output ``(B, K)`` whose rows match this target's rows."""
        if self.space == "probability":
            output = probabilities(output)
        if self.classes is None:
            return self.score_fn(output)
        if output.ndim == 1:
            return output
        return output.gather(1, self.classes.to(output.device)[:, None]).squeeze(1)

    def __len__(self) -> int:
        return -1 if self.classes is None else len(self.classes)

    def take(self, rows: torch.Tensor | slice) -> "Target":
        """The target of a subset (or a repetition) of the rows."""
        if self.classes is None:
            return self
        return Target(self.classes[rows], self.score_fn, self.space)

    def repeat_each(self, n: int) -> "Target":
        """Each sample's target repeated ``n`` times in a row: rows ``b*n .. b*n+n-1``."""
        if self.classes is None:
            return self
        return Target(self.classes.repeat_interleave(n), self.score_fn, self.space)

    def on_probabilities(self) -> "Target":
        return Target(self.classes, self.score_fn, "probability")

    def class_indices(self) -> torch.Tensor:
        """``(B,)`` class index per sample, ``-1`` where the target is a callable."""
        return self.classes if self.classes is not None else torch.tensor([-1])


def probabilities(output: torch.Tensor) -> torch.Tensor:
    """Softmax over classes, or a two-column sigmoid for single-logit models."""
    if output.ndim == 2 and output.shape[1] == 1:
        p = torch.sigmoid(output)
        return torch.cat([1 - p, p], dim=1)
    return torch.softmax(output, dim=1)


def to_target(target: TargetLike, output: torch.Tensor, batch: int | None = None) -> Target:
    """Convert a user-facing target into a :class:`Target` checked against ``output``.

    Parameters
    ----------
    target : int, sequence of int, tensor, callable or None
        ``None`` explains the predicted class of each sample.
    output : torch.Tensor
        The model output ``(B, K)`` for the batch, or for its first rows only when the target
        is given explicitly (the output then only tells the number of classes).
    batch : int, optional
        The batch size when ``output`` covers fewer rows; default ``len(output)``.
    """
    if output.ndim != 2:
        raise TargetError(
            f"the model output has shape {tuple(output.shape)}; medlens explains outputs of "
            "shape (batch, classes): pass a callable target to reduce other outputs"
        )
    rows, n_classes = output.shape
    batch = rows if batch is None else batch
    if callable(target) and not isinstance(target, torch.Tensor):
        scores = target(output.detach())
        if not isinstance(scores, torch.Tensor) or scores.shape != (rows,):
            got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
            raise TargetError(f"a target callable must return one score per sample, shape ({rows},); got {got}")
        return Target(None, target)
    if target is None:
        if rows != batch:
            raise ValueError("to_target needs the whole batch's output to find the predicted classes")
        classes = output.argmax(dim=1)
    elif isinstance(target, bool):
        raise TargetError("target must be a class index, not a bool")
    elif isinstance(target, int):
        classes = torch.full((batch,), target, dtype=torch.long)
    else:
        classes = torch.as_tensor(target)
        if classes.is_floating_point() or classes.dtype == torch.bool:
            raise TargetError(f"target must hold integer class indices, got dtype {classes.dtype}")
        classes = classes.long().reshape(-1)
        if classes.numel() == 1:
            classes = classes.expand(batch).clone()
        if classes.numel() != batch:
            raise TargetError(f"got {classes.numel()} targets for a batch of {batch} samples")
    classes = classes.to("cpu")
    bad = (classes < 0) | (classes >= n_classes)
    if bad.any():
        raise TargetError(
            f"target {int(classes[bad][0])} is out of range: the model has {n_classes} "
            f"output(s), valid targets are 0..{n_classes - 1}"
        )
    return Target(classes.to(output.device))
