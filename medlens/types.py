"""The result type every attribution method returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class Attribution:
    """An explanation of a model's decision for a batch of inputs.

    Attributes
    ----------
    values : torch.Tensor
        Attribution map. Shape ``(B, C, *spatial)`` like the input for input-space methods;
        layer-resolution methods (``gradcam`` with ``upsample=False``) return
        ``(B, 1, *layer_spatial)``.
    method : str
        Registered method name, e.g. ``"gradient"``.
    target : torch.Tensor
        The explained class index per sample, shape ``(B,)``, or ``-1`` per sample when the
        target was a callable.
    params : dict
        The options the method ran with (defaults filled in), for reports and reproducibility.
    seconds : float
        Wall time of the method (model evaluations included).
    extras : dict
        Method-specific diagnostics, e.g. ``{"convergence_delta": tensor}`` for integrated
        gradients.
    """

    values: torch.Tensor
    method: str
    target: torch.Tensor
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def shape(self) -> torch.Size:
        return self.values.shape

    def __repr__(self) -> str:  # short: values can be large
        return (
            f"Attribution(method={self.method!r}, shape={tuple(self.values.shape)}, "
            f"target={self.target.tolist()}, seconds={self.seconds:.3f})"
        )
