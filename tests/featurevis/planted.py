"""A planted oriented detector and the measure of how well a rendering recovers it.

Shared by the feature-visualisation tests and ``benchmarks/fourier_frequencies.py``.
"""

from __future__ import annotations

import math

import torch

from medlens.models import CNN


def grating(n: int, period: float, theta: float, phase: float = 0.0) -> torch.Tensor:
    """``cos(2 pi <(y, x), (cos t, sin t)> / period + phase)`` tiled over an ``n x n`` image."""
    y, x = torch.meshgrid(torch.arange(float(n)), torch.arange(float(n)), indexing="ij")
    return torch.cos(2 * math.pi * (y * math.cos(theta) + x * math.sin(theta)) / period + phase)


def best_phase_correlation(img: torch.Tensor, period: float, theta: float, win: int = 16) -> float:
    """Correlation with the grating at its best phase, averaged over half-overlapping windows.

    A rendering repeats the pattern with a phase that drifts between regions; the best-phase
    correlation is the amplitude of the projection on the cosine and sine gratings.
    """
    n = img.shape[-1]
    c, s = grating(n, period, theta), grating(n, period, theta, math.pi / 2)
    vals = []
    for y0 in range(0, n - win + 1, win // 2):
        for x0 in range(0, n - win + 1, win // 2):
            w = (slice(y0, y0 + win), slice(x0, x0 + win))
            parts = []
            for g in (c[w], s[w]):
                a, b = img[w] - img[w].mean(), g - g.mean()
                parts.append(float((a * b).sum() / (a.norm() * b.norm() + 1e-12)))
            vals.append(math.hypot(*parts))
    return sum(vals) / len(vals)


def planted_detector(period: float, theta: float, kernel: int = 11, size: int = 40) -> CNN:
    """A CNN (seed 0) whose first-layer channel 0 is the zero-mean, unit-norm grating."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = CNN(2, 1, 2, widths=(4, 8), kernel_size=kernel, input_shape=(1, size, size))
    i = torch.arange(float(kernel)) - kernel // 2
    y, x = torch.meshgrid(i, i, indexing="ij")
    pattern = torch.cos(2 * math.pi * (y * math.cos(theta) + x * math.sin(theta)) / period)
    pattern = pattern - pattern.mean()
    with torch.no_grad():
        model.features.block1.conv.weight[0, 0] = pattern / pattern.norm()
        model.features.block1.conv.bias[0] = 0.0
    return model.eval()
