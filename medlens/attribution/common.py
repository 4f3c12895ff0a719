"""Helpers shared by the attribution methods: row views, sums, a layer trace.

Baselines, seeds, blurs and option checks are shared with the other packages and live in
``medlens.core`` (``baselines``, ``random``, ``blur``, ``options``).

Everything here is shape-generic: an input is ``(B, C, *spatial)`` with 1, 2 or 3 spatial
dimensions, and nothing branches on the rank.
"""

from __future__ import annotations

import torch
from torch import nn

from medlens.core.hooks import on_leaf_calls


def view_rows(values: torch.Tensor, ndim: int) -> torch.Tensor:
    """``(N,)`` per-row values shaped ``(N, 1, ..., 1)`` to broadcast over ``ndim``-dim rows."""
    return values.reshape((-1,) + (1,) * (ndim - 1))


def spatial_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum of ``(B, *rest)`` over everything but the batch dimension: ``(B,)``."""
    return values.reshape(values.shape[0], -1).sum(1)


def layer_trace(model: nn.Module, sample: torch.Tensor) -> list[tuple[nn.Module, torch.Size, int]]:
    """Leaf modules in execution order for one input ``(1, C, *spatial)``.

    Returns ``(module, output shape, number of calls of that module in the pass)`` per call:
    a module called more than once (a shared activation) has an ambiguous output.
    """
    from medlens.core import engine
    from medlens.core.engine import Budget

    log: list[tuple[nn.Module, torch.Size]] = []

    def record(module, _inputs, output):
        if isinstance(output, torch.Tensor):
            log.append((module, output.shape))

    with on_leaf_calls(model, record):
        engine.run(model, 1, sample, budget=Budget(batch_size=1))
    calls: dict[int, int] = {}
    for module, _ in log:
        calls[id(module)] = calls.get(id(module), 0) + 1
    return [(module, shape, calls[id(module)]) for module, shape in log]
