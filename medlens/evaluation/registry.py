"""Metric registry: name -> stateless scoring function and what it needs.

The leaderboard scores every (method, metric) pair through this table, so a new metric is one
registered function. Metadata says how to read a number (``higher_is_better``; ``None`` for a
diagnostic such as the share of attribution on a shortcut marker), what it needs (ground-truth
masks, marker masks) and whether it explains again (randomisation, robustness: costly).

A registered metric is ``fn(batch: EvalBatch, **options) -> (B,) tensor`` or
``((B,) tensor, extras)`` where ``extras`` maps a name to a per-sample tensor ``(B, ...)``
(the deletion curve, for instance). NaN marks a sample the metric does not apply to.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from medlens.core.engine import Budget
from medlens.core.targets import Target
from medlens.core.registry import Registry
from medlens.evaluation.explainers import Explainer

__all__ = ["METRICS", "EvalBatch", "MetricInfo", "get_metric", "metric_names", "register_metric"]


@dataclass(frozen=True)
class EvalBatch:
    """What a metric may look at for one batch of samples and one method.

    Attributes
    ----------
    model : nn.Module
    x : torch.Tensor
        ``(B, C, *spatial)`` inputs.
    target : Target
        The explained classes.
    attribution : torch.Tensor
        ``(B, C', *s')`` the method's maps for ``x``.
    explainer : callable
        ``fn(model, x, target) -> (B, C', *s')``: the same method, for re-explaining.
    sample_ids : torch.Tensor
        ``(B,)`` indices of the samples in the data set (seeds per-sample randomness).
    masks, marker_masks : torch.Tensor or None
        ``(B, *spatial)`` bool evidence masks and shortcut-marker masks.
    randomised_attribution : torch.Tensor or None
        ``(B, C', *s')`` the method's maps for ``x`` under a fully randomised copy of the model
        (computed once per batch when a metric ``needs_randomised``).
    seed : int
    budget : Budget
    """

    model: nn.Module
    x: torch.Tensor
    target: Target
    attribution: torch.Tensor
    explainer: Explainer
    sample_ids: torch.Tensor
    masks: torch.Tensor | None = None
    marker_masks: torch.Tensor | None = None
    randomised_attribution: torch.Tensor | None = None
    seed: int = 0
    budget: Budget = field(default_factory=Budget)


@dataclass(frozen=True)
class MetricInfo:
    """Metadata of a registered metric.

    Attributes
    ----------
    name : str
    fn : callable
    higher_is_better : bool or None
        ``None`` for diagnostics that are neither good nor bad in themselves.
    needs_masks : bool
        Needs ground-truth evidence masks (localisation).
    needs_marker : bool
        Needs shortcut-marker masks.
    reexplains : bool
        Explains again (perturbed model or inputs): costs several times the method itself.
    needs_randomised : bool
        Reads :attr:`EvalBatch.randomised_attribution`.
    summary : str
        One line for tables and reports.
    reference : str
    label : str
        Short column title.
    """

    name: str
    fn: Callable[..., Any]
    higher_is_better: bool | None
    needs_masks: bool = False
    needs_marker: bool = False
    reexplains: bool = False
    needs_randomised: bool = False
    summary: str = ""
    reference: str = ""
    label: str = ""

    def options(self) -> dict[str, Any]:
        """The metric's options with their defaults."""
        params = list(inspect.signature(self.fn).parameters.values())[1:]
        return {p.name: p.default for p in params if p.kind is p.KEYWORD_ONLY}


def _load_builtin_metrics() -> None:
    import medlens.evaluation.metrics  # noqa: F401  (registers the built-in metrics)


METRICS: Registry[MetricInfo] = Registry("metric", load=_load_builtin_metrics)


def register_metric(
    name: str,
    *,
    higher_is_better: bool | None,
    needs_masks: bool = False,
    needs_marker: bool = False,
    reexplains: bool = False,
    needs_randomised: bool = False,
    summary: str = "",
    reference: str = "",
    label: str = "",
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator that registers a leaderboard metric under ``name``."""
    return METRICS.decorator(
        name,
        wrap=lambda fn: MetricInfo(
            name, fn, higher_is_better, needs_masks, needs_marker, reexplains, needs_randomised,
            summary, reference, label or name,
        ),
        same=lambda old, new: old.fn is new.fn,
    )


def get_metric(name: str) -> MetricInfo:
    """The registered metric ``name``; an unknown name raises ``UnknownNameError``."""
    return METRICS.get(name)

def metric_call_options(name: str, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Metric ``name``'s options with the defaults filled in, ``options`` checked against them
    (the one "no such option" check)."""
    from medlens.core.options import check_known

    known = get_metric(name).options()
    check_known("metric", name, options or {}, known)
    return {**known, **(options or {})}


def metric_names() -> list[str]:
    """Registered metric names, in registration order."""
    return METRICS.names()


def torch_tensor(values: torch.Tensor) -> torch.Tensor:
    return values.detach().to("cpu", torch.float64)
