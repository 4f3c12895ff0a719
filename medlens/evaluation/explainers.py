"""An explainer: a method name (with options) or any function, called on a model and inputs.

The sanity check and the robustness metric re-explain perturbed inputs or perturbed models, so
they take an *explainer* ``fn(model, x, target) -> (B, C', *s')``: a registered method through
:func:`medlens.explain`, or a plain function (the baselines, the input itself, an edge detector).
"""

from __future__ import annotations

from typing import Any, Callable, Union

import torch
from torch import nn

from medlens.core.engine import Budget
from medlens.core.targets import Target

Explainer = Callable[[nn.Module, torch.Tensor, Target], torch.Tensor]
MethodLike = Union[str, Explainer]


def explainer_for(method: MethodLike, *, budget: Budget = Budget(), **options: Any) -> Explainer:
    """An :data:`Explainer` for a registered method name (with its options) or a callable."""
    if callable(method):
        return method
    from medlens.attribution.explain import explain
    from medlens.attribution.registry import get_method

    get_method(method)  # an unknown name fails here, before any work

    def run_method(model: nn.Module, x: torch.Tensor, target: Target) -> torch.Tensor:
        return explain(
            model, x, target, method,
            batch_size=budget.batch_size, memory_mb=budget.memory_mb, **options,
        ).values

    return run_method
