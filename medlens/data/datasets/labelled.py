"""A labelled data set: inputs, labels, optional masks, class names."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class LabelledSet:
    """One split of a labelled data set.

    Attributes
    ----------
    inputs : torch.Tensor
        ``float32``, shape ``(N, C, *spatial)``: ``(N, C, H, W)`` for images,
        ``(N, C, D, H, W)`` for volumes, ``(N, C, L)`` for signals. uint8 images are scaled to
        ``[0, 1]`` (divided by 255); float images and signals are kept as stored. Token data sets
        are the exception: ``int64`` of shape ``(N, L)``.
    labels : torch.Tensor
        ``int64``, shape ``(N,)``, class indices into :attr:`class_names`; or, multi-label,
        ``float32`` ``(N, K)`` of 0/1, column ``k`` the finding :attr:`class_names` ``[k]``.
    masks : torch.Tensor or None
        Ground-truth evidence masks, ``float32`` of shape ``(N, 1, *spatial)`` (same spatial
        shape as :attr:`inputs`), or ``None`` when the data set has none.
    name : str
        ``"<data set>/<split>"``, e.g. ``"pneumoniamnist/test"``.
    class_names : tuple of str
        Name of each class; ``class_names[k]`` names label ``k``.
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor | None
    name: str
    class_names: tuple[str, ...]

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def __repr__(self) -> str:  # short: tensors can be large
        masks = None if self.masks is None else tuple(self.masks.shape)
        return (
            f"LabelledSet(name={self.name!r}, inputs={tuple(self.inputs.shape)} "
            f"{str(self.inputs.dtype).replace('torch.', '')}, labels={tuple(self.labels.shape)}, "
            f"masks={masks}, class_names={self.class_names!r})"
        )


