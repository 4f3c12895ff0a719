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
    space : {"logit", "probability", "sigmoid"}
        ``"probability"`` applies softmax (or a sigmoid for single-output models:
        :func:`column_probabilities`) before selecting the class: black-box methods such as
        RISE, and deletion and insertion, score probabilities (:func:`probability_target`).
        ``"sigmoid"``: each column's own sigmoid, for a :class:`MultiLabel` model.
    """

    classes: torch.Tensor | None = None
    score_fn: ScoreFn | None = None
    space: str = "logit"
    checked: bool = True

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        """Scores ``(B,)`` for an output ``(B, K)`` whose rows match this target's rows.

        A target made before the model ran (``checked=False``) is checked against each output
        it reads: the shape, the class range, a callable's one score per row. The check costs
        no model evaluation, so explaining with an explicit target needs no extra pass.
        """
        if not self.checked and self.classes is not None:  # a callable may reduce any output
            check_output(output)
            check_range(self.classes, output.shape[1])
        if self.space == "probability":
            output = column_probabilities(output)
        elif self.space == "sigmoid":
            output = torch.sigmoid(output)
        if self.classes is None:
            scores = self.score_fn(output)
            if not self.checked:
                check_scores(scores, len(output))
            return scores
        if output.ndim == 1:
            return output
        return output.gather(1, self.classes.to(output.device)[:, None]).squeeze(1)

    def __len__(self) -> int:
        return -1 if self.classes is None else len(self.classes)

    def take(self, rows: torch.Tensor | slice) -> "Target":
        """The target of a subset (or a repetition) of the rows."""
        if self.classes is None:
            return self
        return Target(self.classes[rows], self.score_fn, self.space, self.checked)

    def repeat_each(self, n: int) -> "Target":
        """Each sample's target repeated ``n`` times in a row: rows ``b*n .. b*n+n-1``."""
        if self.classes is None:
            return self
        return Target(self.classes.repeat_interleave(n), self.score_fn, self.space, self.checked)

    def on_probabilities(self) -> "Target":
        return Target(self.classes, self.score_fn, "probability", self.checked)

    def class_indices(self, batch: int | None = None) -> torch.Tensor:
        """``(B,)`` class index per sample, ``-1`` per sample where the target is a callable.

        ``batch`` is needed for a callable target, which does not know the batch size.
        """
        if self.classes is not None:
            return self.classes
        return torch.full((1 if batch is None else batch,), -1, dtype=torch.long)


class PredictedTarget:
    """The predicted class of each sample, read from the model outputs the method's own pass
    computes on the unmodified inputs (methods registered with ``reads_prediction``): the
    classes :func:`to_target` would take from a separate forward pass, at no extra evaluation.

    It behaves as a :class:`Target` to the engine (``take`` a chunk's rows, call it on that
    chunk's outputs); each call records the chunk's argmax, and :meth:`class_indices` returns
    them once the pass has run. It must never see outputs of modified inputs.
    """

    space = "logit"
    checked = False
    classes = None

    def __init__(self, batch: int, *, _store: torch.Tensor | None = None, _rows: torch.Tensor | None = None) -> None:
        self._store = torch.full((batch,), -1, dtype=torch.long) if _store is None else _store
        self._rows = torch.arange(batch) if _rows is None else _rows

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        check_output(output)
        if len(output) != len(self._rows):
            raise ValueError(f"a predicted-class target of {len(self._rows)} rows got {len(output)} outputs")
        classes = output.detach().argmax(dim=1)
        self._store[self._rows] = classes.cpu()
        return output.gather(1, classes[:, None]).squeeze(1)

    def __len__(self) -> int:
        return len(self._rows)

    def take(self, rows: torch.Tensor | slice) -> "PredictedTarget":
        return PredictedTarget(0, _store=self._store, _rows=self._rows[rows])

    def class_indices(self, batch: int | None = None) -> torch.Tensor:
        if bool((self._store < 0).any()):
            raise RuntimeError("the predicted classes are read in the method's pass, which has not run on every sample")
        return self._store.clone()


def check_output(output: torch.Tensor) -> None:
    """A model output an explanation can select scores from: ``(batch, classes)``."""
    if output.ndim != 2:
        raise TargetError(
            f"the model output has shape {tuple(output.shape)}; medlens explains outputs of "
            "shape (batch, classes): pass a callable target to reduce other outputs"
        )


def check_range(classes: torch.Tensor, n_classes: int) -> None:
    """Every class index within ``0..n_classes-1``."""
    bad = (classes < 0) | (classes >= n_classes)
    if bad.any():
        raise TargetError(
            f"target {int(classes[bad][0])} is out of range: the model has {n_classes} "
            f"output(s), valid targets are 0..{n_classes - 1}"
        )


def check_scores(scores: object, rows: int) -> None:
    """A target callable's result: one score per row."""
    if not isinstance(scores, torch.Tensor) or scores.shape != (rows,):
        got = tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__
        raise TargetError(f"a target callable must return one score per sample, a tensor ({rows},) for the {rows} "
                          f"output row(s) it was given (methods evaluate several inputs per sample); got {got}")


def summed_scores(model: torch.nn.Module) -> bool:
    """Whether ``model``'s output is a score summed by :class:`ReducedOutput` (a class's scores
    inside a region of a segmentation, or a whole regression output) rather than a classifier's
    logits. Its softmax or sigmoid means nothing (the sigmoid of a sum of thousands of voxel
    logits is 0 or 1 whatever the input), so methods that score probabilities (RISE, deletion
    and insertion) score such an output as it is."""
    return any(isinstance(m, ReducedOutput) for m in model.modules())


#: A multi-label model predicts the findings whose own sigmoid is at least this.
FINDING_THRESHOLD = 0.5


class MultiLabel(torch.nn.Module):
    """A multi-label model: one independent sigmoid per output column (findings that can occur
    together, as ChestMNIST's or CheXpert's 14), not one softmax across columns.

    Methods that score probabilities (RISE, deletion and insertion) score a finding by its own
    sigmoid; without this wrapper they take a softmax across the findings, so a finding's score
    also moves with every other finding's logit. Gradient and CAM methods explain the logit
    either way. The output passes through unchanged.

    Parameters
    ----------
    model : nn.Module
        Returns ``(B, K)``: one logit per finding, or, with ``outputs="probabilities"``, a model
        whose last step is already the sigmoid (those are then scored as they are).
    outputs : {"logits", "probabilities"}
    """

    OUTPUTS = ("logits", "probabilities")

    def __init__(self, model: torch.nn.Module, outputs: str = "logits") -> None:
        super().__init__()
        if outputs not in self.OUTPUTS:
            raise TargetError(f"MultiLabel outputs must be one of {', '.join(self.OUTPUTS)}, got {outputs!r}")
        self.model = model
        self.outputs = outputs

    def forward(self, *args, **kwargs):
        return self.model(*args, **kwargs)

    def __getattr__(self, name: str):
        """What the wrapper lacks is read off the wrapped model (its ``embed``, ``config``,
        ``input_shape``), so code that asks the model for them finds them as without the wrapper."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "model":
                raise
            return getattr(self.model, name)


def multilabel_of(model: torch.nn.Module) -> MultiLabel | None:
    """The :class:`MultiLabel` wrapper inside ``model``, or ``None`` for a single-label model."""
    return next((m for m in model.modules() if isinstance(m, MultiLabel)), None)


def model_probabilities(output: torch.Tensor, model: torch.nn.Module) -> torch.Tensor:
    """The probabilities ``model``'s ``output`` ``(B, K)`` means, as shown to a user: for a
    :class:`MultiLabel` model each finding's own sigmoid (one probability per finding, not a
    distribution: they need not sum to 1), or the output itself when the model already outputs
    probabilities; else :func:`probabilities` (a softmax over classes)."""
    multilabel = multilabel_of(model)
    if multilabel is None:
        return probabilities(output)
    return output if multilabel.outputs == "probabilities" else torch.sigmoid(output)


def probability_target(target: Target, model: torch.nn.Module) -> Target:
    """``target`` scoring ``model``'s probabilities, for methods that score probabilities (RISE,
    deletion and insertion): a softmax over classes (a single logit's sigmoid); each finding's own
    sigmoid for a :class:`MultiLabel` model; the output as it is for a summed score
    (:func:`summed_scores`) and for a multi-label model that already outputs probabilities."""
    multilabel = multilabel_of(model)
    if summed_scores(model) or (multilabel is not None and multilabel.outputs == "probabilities"):
        return target
    space = "probability" if multilabel is None else "sigmoid"
    return Target(target.classes, target.score_fn, space, target.checked)


def probabilities(output: torch.Tensor) -> torch.Tensor:
    """Softmax over classes, or a two-column sigmoid for single-logit models."""
    if output.ndim == 2 and output.shape[1] == 1:
        p = torch.sigmoid(output)
        return torch.cat([1 - p, p], dim=1)
    return torch.softmax(output, dim=1)


def column_probabilities(output: torch.Tensor) -> torch.Tensor:
    """The probability of each output column, the classes a target indexes: a softmax over
    classes; a single-logit model's one column is its sigmoid, the probability of the class its
    logit scores (target 0), not :func:`probabilities`' two columns ``[1 - p, p]``, whose column 0
    is the other class."""
    if output.ndim == 2 and output.shape[1] == 1:
        return torch.sigmoid(output)
    return torch.softmax(output, dim=1)


def to_target(target: TargetLike, output: torch.Tensor | None, batch: int | None = None) -> Target:
    """Convert a user-facing target into a :class:`Target` checked against ``output``.

    Parameters
    ----------
    target : int, sequence of int, tensor, callable or None
        ``None`` explains the predicted class of each sample.
    output : torch.Tensor or None
        The model output ``(B, K)`` for the batch, or for its first rows only when the target
        is given explicitly (the output then only tells the number of classes). ``None`` for
        an explicit target: the returned target then checks itself against the outputs it
        reads (``Target.checked`` is False), which spares a model evaluation.
    batch : int, optional
        The batch size when ``output`` covers fewer rows; default ``len(output)``.
    """
    if output is None:
        if target is None:
            raise ValueError("to_target needs the model output to find the predicted classes")
        if batch is None:
            raise ValueError("to_target needs the batch size when no output is given")
    else:
        check_output(output)
    rows, n_classes = (batch, None) if output is None else output.shape
    batch = rows if batch is None else batch
    if isinstance(target, Target):
        return target if len(target) in (-1, batch) else _wrong_count(len(target), batch)
    if callable(target) and not isinstance(target, torch.Tensor):
        if output is None:
            return Target(None, target, checked=False)
        check_scores(target(output.detach()), rows)
        return Target(None, target)
    if target is None:
        if rows != batch:
            raise ValueError("to_target needs the whole batch's output to find the predicted classes")
        classes = output.argmax(dim=1)
    elif isinstance(target, bool):
        raise TargetError("target must be a class index, not a bool")
    elif isinstance(target, (str, bytes)):
        raise TargetError(f"target must be a class index (an int), not the string {target!r}")
    elif isinstance(target, int):
        classes = torch.full((batch,), target, dtype=torch.long)
    else:
        try:
            classes = torch.as_tensor(target)
        except (TypeError, ValueError, RuntimeError) as err:  # a list of names, a dict, a ragged list
            raise TargetError(f"target must be a class index, one per sample, or a callable; got {target!r:.60}") from err
        if classes.ndim == 2 and classes.shape[0] == batch and classes.shape[1] > 1:
            raise TargetError(f"the target has shape {tuple(classes.shape)}, a row per sample; give one class index per "
                              "sample (for one-hot labels, labels.argmax(1))")
        if classes.is_floating_point() or classes.dtype == torch.bool:
            raise TargetError(f"target must hold integer class indices, got dtype {classes.dtype}")
        classes = classes.long().reshape(-1)
        if classes.numel() == 1:
            classes = classes.expand(batch).clone()
        if classes.numel() != batch:
            _wrong_count(classes.numel(), batch)
    classes = classes.to("cpu")
    if output is None:
        if (classes < 0).any():
            raise TargetError(f"target {int(classes[classes < 0][0])} is out of range: class indices start at 0")
        return Target(classes, checked=False)
    check_range(classes, n_classes)
    return Target(classes.to(output.device))


def _wrong_count(got: int, batch: int):
    raise TargetError(f"got {got} targets for a batch of {batch} samples")


class ReducedOutput(torch.nn.Module):
    """A model whose output is reduced to one score per sample ``(B, 1)``, for every method.

    Segmentation models: the sum of output channel ``channel``'s scores inside ``mask``
    (``(*spatial)`` on the output's grid), the target used for segmentation saliency in
    M3d-CAM and pytorch-grad-cam's ``SemanticSegmentationTarget``. Regression models
    (``channel=None``, ``mask=None``): the sum of the whole output. Wrapping the model, rather
    than passing a callable target, keeps every method, including the perturbation ones, on
    the usual ``(batch, classes)`` path.

    Parameters
    ----------
    model : nn.Module
        Output ``(B, K, *spatial)`` (segmentation), or ``(B, *)`` (regression).
    channel : int, optional
        The output channel (class) to sum.
    mask : torch.Tensor, optional
        ``(*spatial)`` weights on the output grid (binary for a region).
    """

    def __init__(self, model: torch.nn.Module, channel: int | None = None, mask: torch.Tensor | None = None) -> None:
        super().__init__()
        self.model = model
        self.channel = channel
        self.register_buffer("mask", None if mask is None else mask.detach().float(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if self.channel is not None:
            if out.ndim < 2 or not 0 <= self.channel < out.shape[1]:
                raise TargetError(f"target class {self.channel} is not an output channel of shape {tuple(out.shape)}")
            out = out[:, self.channel]
        if self.mask is not None:
            if tuple(out.shape[1:]) != tuple(self.mask.shape):
                raise TargetError(f"the mask has shape {tuple(self.mask.shape)} but the output is {tuple(out.shape[1:])}")
            out = out * self.mask
        return out.reshape(len(out), -1).sum(dim=1, keepdim=True)
