"""How many window evaluations occlusion through sliding windows will spend, and its default
window and stride, chosen from that count before anything runs.

A patch of occlusion changes only the inferer's windows it overlaps, so whole-volume occlusion
costs ``A + sum_{p} #{windows p touches}`` window evaluations (``A``: the windows the target
weighs, run once unoccluded). A quarter-roi patch (24^3 at stride 12 on a 224 x 224 x 60 MRI
through a roi of 96^3) touches 4,732 windows: an hour through a MONAI U-Net. The default is
therefore the finest of :data:`ROI_FRACTIONS` of the roi (at half-window strides) whose count
times one window's counted forward cost (:func:`medlens.core.cost.forward_cost`) fits
:func:`whole_volume_budget`, else the coarsest (the roi itself, then at a stride of the whole
roi). The count depends only on the model, the roi, the overlap and the volume's shape (never
on how busy the machine is), and it is the exact count :func:`sliding_occlusion` spends.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from medlens.attribution.occlusion import COARSE_TO_FINE_BUDGET_SCALE, half_strides, window_starts
from medlens.core import cost

ROI_FRACTIONS = (1 / 4, 1 / 3, 1 / 2, 1)  # default occlusion windows, as shares of the roi, finest first


def whole_volume_budget(spatial_dims: int) -> float:
    """What a default may spend on a whole volume: what plain occlusion's default spends on one
    input of that rank, so that going through sliding windows never costs more than the
    non-sliding default. A volume (3D): :data:`~medlens.attribution.occlusion.COARSE_TO_FINE_BUDGET_SCALE`
    times :data:`~medlens.core.cost.FLOP_BUDGET` (8.75 TFLOP, about 90 s on the reference
    machine); an image: :data:`~medlens.core.cost.FLOP_BUDGET` (its grid default)."""
    return cost.FLOP_BUDGET * (COARSE_TO_FINE_BUDGET_SCALE if spatial_dims == 3 else 1.0)


def touches(patch: Sequence[int], window: Sequence[int], start: Sequence[int], roi: Sequence[int]) -> bool:
    """Whether the occlusion patch at ``patch`` overlaps the inferer's window at ``start``."""
    return all(a < s + r and s < a + w for a, w, s, r in zip(patch, window, start, roi))


def patch_starts(spatial: Sequence[int], window: Sequence[int], stride: Sequence[int],
                 inside: Sequence[tuple[int, int]] | None = None) -> list[list[int]]:
    """Per dimension, the starts of the occlusion patches over ``spatial`` that overlap ``inside``
    (the volume's ``(start, stop)`` per dimension within the grid the inferer padded to the roi;
    the whole grid when ``None``). A patch lying wholly in that padding is never run: the map
    there is cropped away, and no voxel of the volume is under it."""
    inside = inside or [(0, n) for n in spatial]
    return [[a for a in window_starts(n, w, st) if a < hi and lo < a + w]
            for n, w, st, (lo, hi) in zip(spatial, window, stride, inside)]


def evaluation_count(spatial: Sequence[int], roi: Sequence[int], active: Sequence[Sequence[int]],
                     window: Sequence[int], stride: Sequence[int],
                     inside: Sequence[tuple[int, int]] | None = None) -> int:
    """Window evaluations of occlusion with ``window``/``stride`` over ``spatial``: the ``active``
    windows once unoccluded, then every (patch, active window it touches) pair, counted per
    dimension (no pair is listed, so a whole-body CT is counted at once); patches wholly outside
    ``inside`` (:func:`patch_starts`) are not run and not counted."""
    starts = patch_starts(spatial, window, stride, inside)
    pairs = 0
    for s in active:
        pairs += math.prod(sum(1 for a in dim if a < si + r and si < a + w)
                           for dim, w, si, r in zip(starts, window, s, roi))
    return len(active) + pairs


@dataclass(frozen=True)
class OcclusionPlan:
    """The window, stride and window evaluations of one sliding-window occlusion."""

    window: tuple[int, ...]
    stride: tuple[int, ...]
    evaluations: int
    chosen: bool  # window and stride picked from the cost (neither was given)
    cost_per_window: float = 0.0  # counted cost of one window's forward pass, effective FLOPs
    budget: float = 0.0

    @property
    def note(self) -> str:
        """What was planned, in words (the result's note when the defaults were chosen)."""
        size = "x".join(str(w) for w in self.window)
        step = "x".join(str(s) for s in self.stride)
        text = f"occlusion window {size} stride {step}: {self.evaluations:,} window evaluations"
        if not self.chosen:
            return text
        spent = self.evaluations * self.cost_per_window
        text += (f" ({spent / 1e12:.2g} of the {self.budget / 1e12:g} TFLOP a default may spend on a whole volume, "
                 f"{self.cost_per_window / 1e9:.3g} GFLOP per window by the per-operator cost model)")
        if spent > self.budget:
            text += "; even the coarsest window costs more than that"
        return text + "; pass window= and stride= for a finer map (more window evaluations)"


def plan_occlusion(spatial: Sequence[int], roi: Sequence[int], active: Sequence[Sequence[int]],
                   cost_per_window: float, window: Sequence[int] | None = None,
                   stride: Sequence[int] | None = None,
                   inside: Sequence[tuple[int, int]] | None = None) -> OcclusionPlan:
    """The occlusion to run: ``window`` and ``stride`` as given (stride default: half the window),
    or, with neither, the finest :data:`ROI_FRACTIONS` of the roi that fits :func:`whole_volume_budget`;
    ``inside``: the volume within the padded grid (:func:`patch_starts`)."""
    budget = whole_volume_budget(len(spatial))
    if window is not None or stride is not None:
        win = tuple(window) if window is not None else tuple(max(1, r // 4) for r in roi)
        step = tuple(stride) if stride is not None else half_strides(win)
        return OcclusionPlan(win, step, evaluation_count(spatial, roi, active, win, step, inside), False,
                             cost_per_window, budget)
    candidates = [(w, half_strides(w)) for w in (tuple(max(1, round(r * f)) for r in roi) for f in ROI_FRACTIONS)]
    candidates.append((tuple(roi), tuple(roi)))  # the coarsest: the roi itself, patches not overlapping
    for win, step in candidates:
        count = evaluation_count(spatial, roi, active, win, step, inside)
        if count * cost_per_window <= budget:
            break
    return OcclusionPlan(win, step, count, True, cost_per_window, budget)
