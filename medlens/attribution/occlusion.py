"""Occlusion: Zeiler and Fergus, "Visualizing and Understanding Convolutional Networks"
(ECCV 2014).

A window slides over the input; each position is replaced by a baseline and the drop of the
target score is credited to the occluded elements. An element's attribution is the mean drop
over the windows that cover it (as in Captum, so the two agree exactly). Windows are built
lazily, one engine chunk at a time: the perturbed copies of a volume never sit in memory all
at once. The last window of each dimension is clipped at the border so that every element is
covered. By default the first layers are evaluated incrementally (only the region a window
changes is recomputed; see :mod:`medlens.attribution.incremental`), which takes a CNN's
occlusion below the cost of one full forward pass per window.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from medlens.core.baselines import BaselineLike, resolve_baseline
from medlens.core.options import per_dim
from medlens.attribution.incremental import ThreadsPrepared, prepare, short_circuit, window_chunk
from medlens.attribution.incremental import plan as incremental_plan
from medlens.core import cost, engine
from medlens.core.cost import affordable, chosen
from medlens.core.engine import Budget
from medlens.attribution.registry import register
from medlens.core.targets import Target
from medlens.errors import InputError

WINDOW_FRACTIONS = (1 / 8, 1 / 6, 1 / 4, 1 / 3, 1 / 2)  # default windows, finest first
#: Coarse-to-fine occlusion at its defaults spends this many times :data:`~medlens.core.cost.FLOP_BUDGET`
#: (counted, so the default still depends only on the model and the input shape; a window evaluated
#: through incremental inference is counted at its reduced cost). The scale keeps the 3D models of the
#: known-answer benchmark (``benchmarks/volumes_known_answer.py``: MONAI ResNet-18 3D and DenseNet-121
#: 3D at 64^3) under 60 s at two threads with a margin for the load: at 4 they took 53.7 s and 60.7 s
#: (load about 2), at 3.5 46.5 s and 49.9 s (344 and 760 windows; benchmarks/README.md).
COARSE_TO_FINE_BUDGET_SCALE = 3.5


def default_window(spatial: Sequence[int], max_windows: int | None = None) -> tuple[int, ...]:
    """The finest of :data:`WINDOW_FRACTIONS` of each spatial size whose windows (at half-window
    strides) number at most ``max_windows``, or the coarsest.

    Without a limit an eighth of each size (at least 1): 4x4 on 28x28, 16x16 on 128x128, 12^3
    on 96^3; a 64^3 volume through a 3D ResNet-18 (63 GFLOP per pass) gets half-size windows.
    """
    for fraction in WINDOW_FRACTIONS:
        win = tuple(max(1, round(n * fraction)) for n in spatial)
        if max_windows is None or window_count(spatial, win, half_strides(win)) <= max_windows:
            break
    return win


def half_strides(window: Sequence[int]) -> tuple[int, ...]:
    """The default stride: half the window (at least 1)."""
    return tuple(max(1, w // 2) for w in window)


def window_count(spatial: Sequence[int], window: Sequence[int], stride: Sequence[int]) -> int:
    """Windows per channel window: ``prod_d (ceil((n_d - window_d) / stride_d) + 1)``."""
    return math.prod(len(window_starts(n, w, s)) for n, w, s in zip(spatial, window, stride))


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Start of every window along one dimension: ``ceil((size - window) / stride) + 1`` of them."""
    count = math.ceil((size - window) / stride) + 1
    return [i * stride for i in range(count)]


def coverage(size: int, window: int, stride: int) -> torch.Tensor:
    """How many windows cover each position of one dimension, ``(size,)``."""
    counts = torch.zeros(size)
    for s in window_starts(size, window, stride):
        counts[s : s + window] += 1
    return counts


@register(
    "occlusion",
    needs_gradients=False,
    summary="score drop when a sliding window is replaced by a baseline",
    reference="Zeiler and Fergus 2014",
)
def occlusion(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    window: int | Sequence[int] | None = None,
    stride: int | Sequence[int] | None = None,
    baseline: BaselineLike = 0.0,
    per_channel: bool = False,
    incremental: bool = True,
    strategy: str | None = None,
    budget: Budget = Budget(),
) -> tuple[torch.Tensor, dict]:
    """Mean score drop of the windows covering each element.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)``.
    window : int or sequence of int, optional
        Window size per spatial dimension. Default (with the default stride): an eighth of each
        size, larger windows for a model on which that many windows would cost more than
        :data:`~medlens.core.cost.FLOP_BUDGET` (:func:`default_window`); the chosen window is
        recorded in the result's ``params``.
    stride : int or sequence of int, optional
        Step per spatial dimension, at most the window (so every element is covered).
        Default: half the window (at least 1).
    baseline : {"zero", "blur", "mean"}, float or torch.Tensor
        What replaces the occluded elements (default 0).
    per_channel : bool
        ``False``: a window spans all channels and the map is ``(B, 1, *spatial)``.
        ``True``: each channel (an ECG lead, an MRI sequence) is occluded on its own and the
        map is ``(B, C, *spatial)``.
    incremental : bool
        Recompute only the part of the first layers that a window changes (incremental
        inference, :mod:`medlens.attribution.incremental`), when the model starts with a chain
        of convolutions, eval-mode batch norms, activations and poolings; the result is the
        same up to floating-point rounding. ``False`` evaluates every occluded input in full.
        Whether the chain pays is decided from the counted cost of each path.
    strategy : {"grid", "coarse_to_fine"}, optional
        ``grid``: every window of the grid. ``coarse_to_fine``: a tree of windows refined best
        first where the drop is largest (:mod:`medlens.attribution.coarse_to_fine`), at the
        evaluations that :data:`COARSE_TO_FINE_BUDGET_SCALE` times the budget affords.
        Default: ``coarse_to_fine`` for a volume whose
        usual grid (an eighth of each size) would cost more than
        :data:`~medlens.core.cost.FLOP_BUDGET`, with neither ``window`` nor ``stride`` given,
        else ``grid``.

    Returns
    -------
    values : torch.Tensor
        ``(B, 1, *spatial)``, or ``(B, C, *spatial)`` with ``per_channel=True``. Costs
        ``prod_d (ceil((n_d - window_d) / stride_d) + 1)`` forward evaluations per sample
        (times ``C`` with ``per_channel``), plus one for the unoccluded input.
    extras : dict
        Empty, or what :func:`medlens.core.cost.chosen` records when the window was chosen.
    """
    b, c, *spatial = x.shape
    extras: dict = {}
    if strategy not in (None, "grid", "coarse_to_fine"):
        raise InputError(f"unknown occlusion strategy {strategy!r}; choose grid or coarse_to_fine")
    if window is None and stride is None:
        allowed = affordable(model, x, passes=1, low=1, high=2**62) // (c if per_channel else 1)
        fine = default_window(spatial)
        if strategy == "coarse_to_fine" or (strategy is None and len(spatial) == 3 and not per_channel
                                            and allowed < window_count(spatial, fine, half_strides(fine))):
            from medlens.attribution.coarse_to_fine import coarse_to_fine_occlusion

            spend = COARSE_TO_FINE_BUDGET_SCALE * cost.FLOP_BUDGET
            values, info = coarse_to_fine_occlusion(model, x, target, spend=spend, baseline=baseline,
                                                    incremental=incremental, budget=budget)
            extras = chosen(model, x, {"strategy": "coarse_to_fine", "windows": info["windows"],
                                       "finest_window": info["finest_window"]}, reduced=False)
            grid = window_count(spatial, fine, half_strides(fine))
            extras["note"] = (
                f"coarse-to-fine occlusion with {info['windows']} window evaluations ({info['incremental_windows']} "
                f"of them through incremental inference; {info['spent_gflop']:g} GFLOP counted of the "
                f"{spend / 1e9:g} allowed; the grid of {fine} windows would need {grid}): {100 * info['finest_share']:.1f}% of the input was resolved to the finest window "
                f"{info['finest_window']} (best first, where the drop is largest), the rest keeps the drop per element "
                "of a coarser window; pass window= and stride= "
                "(or strategy='grid') for the full grid"
            )
            return values, extras
        win = default_window(spatial, max(1, allowed))
        extras = chosen(model, x, {"window": win, "stride": half_strides(win)}, reduced=win != default_window(spatial))
    else:
        win = per_dim(window, len(spatial), "window") if window is not None else default_window(spatial)
    step = per_dim(stride, len(spatial), "stride") if stride is not None else half_strides(win)
    for n, w, s in zip(spatial, win, step):
        if w > n:
            raise InputError(f"the occlusion window {win} is larger than the input's spatial size {tuple(spatial)}")
        if s > w:
            raise InputError(f"the stride {step} exceeds the window {win}: some elements would never be occluded")
    # windows over (channel, *spatial): one channel window spanning all channels, or one per channel
    sizes = (c, *spatial)
    windows = (1 if per_channel else c, *win)
    strides = (1 if per_channel else c, *step)
    starts = [window_starts(n, w, s) for n, w, s in zip(sizes, windows, strides)]
    n_windows = math.prod(len(s) for s in starts)

    def window_slices(index: int) -> tuple[slice, ...]:
        slices = []
        for dim_starts, w in zip(reversed(starts), reversed(windows)):  # last dimension fastest
            index, i = divmod(index, len(dim_starts))
            slices.append(slice(dim_starts[i], dim_starts[i] + w))
        return tuple(reversed(slices))

    reference = resolve_baseline(x, baseline)
    out_channels = c if per_channel else 1
    # Each sample's rows are the input itself, then its n_windows occluded copies, all in one
    # engine run: rows are consumed in order, so F(x) is known before any of its drops.
    per_sample = n_windows + 1
    drops = x.new_zeros((b, out_channels, *spatial))
    original = x.new_zeros(b)

    chain = incremental_plan(model, x, win, budget) if incremental else None
    current = ThreadsPrepared()  # chunks run side by side: each thread its own

    def build(start: int, stop: int):
        rows = torch.arange(start, stop, device=x.device)
        sample, index = rows // per_sample, rows % per_sample
        occluded = x[sample]  # a copy: advanced indexing
        slices = [window_slices(int(i) - 1) if i > 0 else None for i in index.tolist()]
        for row, (s, sl) in enumerate(zip(sample.tolist(), slices)):
            if sl is not None:
                occluded[(row, *sl)] = reference[(s, *sl)]
        if chain is not None:
            regions = [
                None if sl is None else [(d.start, min(d.stop, n)) for d, n in zip(sl[1:], spatial)]
                for sl in slices
            ]
            current.value = prepare(chain, occluded, sample, regions)
        return occluded, (sample, slices)

    def consume(start, stop, outputs, grads, aux):
        sample, slices = aux
        scores = target.take(sample)(outputs)
        for s, sl, score in zip(sample.tolist(), slices, scores):
            if sl is None:
                original[s] = score
                continue
            # the channel window covers output channel 0 only when windows span all channels
            channel = sl[0] if per_channel else slice(0, 1)
            drops[(s, channel, *sl[1:])] += original[s] - score

    with short_circuit([level.module for level in chain.levels] if chain is not None else [],
                       lambda: current.value):
        engine.run(model, b * per_sample, build, mode="forward", consume=consume, parallel=True,
                   budget=budget if chain is None else window_chunk(chain, x, b * per_sample, budget,
                                                                    engine.model_device(model)))
    counts = torch.ones(())
    for dim, (n, w, s) in enumerate(zip(spatial, win, step)):
        shape = [1] * len(spatial)
        shape[dim] = n
        counts = counts * coverage(n, w, s).view(shape)
    return drops / counts.to(dtype=x.dtype, device=x.device), extras
