"""The learning-rate schedule of this package's training loops."""

from __future__ import annotations

import math

import torch


def warmup_cosine(
    optimizer: torch.optim.Optimizer, steps: int, warmup: float = 0.1
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up over the first ``warmup`` share of ``steps``, then cosine decay to zero.

    Unlike ``OneCycleLR`` it accepts any number of steps, including one (tiny data sets and
    smoke runs).
    """
    steps = max(1, int(steps))
    warm = max(1, int(warmup * steps))

    def factor(t: int) -> float:
        if t < warm:
            return (t + 1) / warm
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (t - warm) / max(1, steps - warm))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
