"""Whole volumes through sliding-window inference: gradient, integrated gradients, Grad-CAM and
occlusion of a patch model run window by window (issue 23).

A CT of 512 x 512 x 256 voxels is segmented by a patch model (roi 96^3) through a sliding-window
inferer: the windows' outputs are blended into one output volume,
``out = sum_w I_w * f(x_w) / sum_w I_w`` with an importance map ``I`` (constant, or a Gaussian
that trusts window centres more). Autograd through the whole inferer keeps every window's
activations at once and runs out of memory on whole-body CT. Here the target is a fixed
weighting of the blended output (the sum of a class inside a mask or a box, or a classification
head linearised at the blended output), so it splits over windows:
``T = sum_w <c_w, f(x_w)>`` with ``c_w = I_w * weight / sum I`` on the window. Each window (or
batch of ``sw_batch_size`` windows) is then run forward and backward with its own cotangent
``c_w`` and its input gradient added into the volume's: one window batch of activations exists
at a time, and the whole gradient costs one forward + backward per window, the floor.

* ``gradient``: as above. ``integrated_gradients``: the same at each quadrature point.
* ``gradcam``: the channel weights are the mean of ``dT/dA`` over every window's layer output
  (one pass), then each window's ``ReLU(sum_k w_k A_k)``, upsampled to the window, is blended
  like the inferer blends outputs (a second, forward-only pass; activations are not kept).
* ``occlusion``: a patch changes only the windows that overlap it, so only those are
  re-evaluated; the score drop is ``sum_{w touched} <c_w, f(x_w) - f(x_w occluded)>``. Its
  default window and stride are chosen from the counted cost of those window evaluations
  (:mod:`~medlens.attribution.sliding_occlusion_plan`), and the plan is said before it runs.

Windows follow MONAI's ``sliding_window_inference`` exactly (interval ``int(roi * (1 -
overlap))``, last window flush with the border; Gaussian importance with ``sigma = sigma_scale *
roi`` clamped at its minimum), so a MONAI ``SlidingWindowInferer`` can be handed in as it is.
"""

from __future__ import annotations

import itertools
import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medlens.core.baselines import resolve_baseline
from medlens.core.checks import evaluation_mode
from medlens.core.engine import model_input, scores_of
from medlens.core.options import per_dim
from medlens.core.progress import SILENT, Progress
from medlens.errors import InputError


@dataclass(frozen=True)
class Windows:
    """A sliding-window inferer's geometry and blending."""

    roi: tuple[int, ...]
    overlap: float = 0.25
    mode: str = "constant"
    sigma_scale: float = 0.125
    batch: int = 1

    def __post_init__(self) -> None:
        if not self.roi or any(int(r) < 1 for r in self.roi):
            raise InputError(f"the roi size must be positive whole numbers, got {self.roi}")
        if not 0 <= self.overlap < 1:
            raise InputError(f"the window overlap must be in [0, 1), got {self.overlap}")
        if self.mode not in ("constant", "gaussian"):
            raise InputError(f"unknown blending mode {self.mode!r}; choose constant or gaussian")
        if self.batch < 1:
            raise InputError(f"the window batch size must be at least 1, got {self.batch}")

    @classmethod
    def of(cls, inferer: Any, spatial_dims: int) -> "Windows":
        """From a :class:`Windows`, a MONAI ``SlidingWindowInferer`` (its ``roi_size``,
        ``overlap``, ``mode``, ``sigma_scale``, ``sw_batch_size``) or a mapping with those keys."""
        if isinstance(inferer, Windows):
            return inferer
        get = inferer.get if isinstance(inferer, dict) else (lambda k, d=None: getattr(inferer, k, d))
        roi = get("roi_size", None) or get("roi", None)
        if roi is None:
            raise InputError("the inferer names no roi size (roi_size=...)")
        roi = tuple(int(r) for r in (roi if isinstance(roi, (tuple, list)) else (roi,) * spatial_dims))
        overlap = get("overlap", 0.25)
        overlap = float(overlap[0] if isinstance(overlap, (tuple, list)) else overlap)
        mode = str(getattr(get("mode", "constant"), "value", get("mode", "constant")))
        sigma = get("sigma_scale", 0.125)
        sigma = float(sigma[0] if isinstance(sigma, (tuple, list)) else sigma)
        return cls(roi, overlap, mode, sigma, int(get("sw_batch_size", 1) or 1))

    def starts(self, spatial: Sequence[int]) -> list[tuple[int, ...]]:
        """Every window's start, last dimension fastest (MONAI's order)."""
        per_dim = []
        for n, r in zip(spatial, self.roi):
            if r >= n:
                per_dim.append([0])
                continue
            interval = max(1, int(r * (1 - self.overlap)))
            count = next(d for d in range(n) if d * interval + r >= n) + 1
            per_dim.append([min(i * interval, n - r) for i in range(count)])
        return list(itertools.product(*per_dim))

    def importance(self, dtype=torch.float32, device=None) -> torch.Tensor:
        """The importance map over one window ``(*roi)``."""
        if self.mode == "constant":
            return torch.ones(self.roi, dtype=dtype, device=device)
        if self.mode != "gaussian":
            raise InputError(f"unknown blending mode {self.mode!r}; choose constant or gaussian")
        out = torch.ones((), dtype=torch.float32, device=device)
        for i, r in enumerate(self.roi):
            pos = torch.arange(r, dtype=torch.float32, device=device) - (r - 1) / 2.0
            g = torch.exp(-(pos**2) / (2 * (self.sigma_scale * r) ** 2))
            out = out.unsqueeze(-1) * g if i else g
        return out.clamp(min=max(float(out.min()), 1e-3)).to(dtype)


def _slices(start: Sequence[int], roi: Sequence[int]) -> tuple[slice, ...]:
    return tuple(slice(s, s + r) for s, r in zip(start, roi))


class Stitching:
    """The blending of one volume: window starts, importance, and the normaliser ``sum_w I_w``."""

    def __init__(self, windows: Windows, spatial: Sequence[int], dtype, device) -> None:
        if any(r > n for r, n in zip(windows.roi, spatial)):
            raise InputError(f"the roi {windows.roi} is larger than the volume {tuple(spatial)}; pad the volume first")
        self.windows = windows
        self.spatial = tuple(spatial)
        self.starts = windows.starts(spatial)
        self.importance = windows.importance(dtype, device)
        self.norm = torch.zeros(self.spatial, dtype=dtype, device=device)
        for s in self.starts:
            self.norm[_slices(s, windows.roi)] += self.importance

    def weights(self, start: Sequence[int]) -> torch.Tensor:
        """``I_w / sum I`` on window ``start``, ``(*roi)``."""
        return self.importance / self.norm[_slices(start, self.windows.roi)]


def region_weight(spatial: Sequence[int], channels: int, *, channel: int | None = None,
                  mask: torch.Tensor | None = None, box: Sequence[tuple[int, int]] | None = None,
                  dtype=torch.float32) -> torch.Tensor:
    """The weighting ``(K, *spatial)`` of the blended output that a segmentation target sums:
    class ``channel`` (all classes when ``None``) inside ``mask`` (``(*spatial)``) or ``box``
    (``[(start, stop), ...]``), everywhere when neither."""
    weight = torch.zeros((channels, *spatial), dtype=dtype)
    inside = torch.ones(spatial, dtype=dtype)
    if mask is not None:
        if tuple(mask.shape) != tuple(spatial):
            raise InputError(f"the mask has shape {tuple(mask.shape)} but the volume is {tuple(spatial)}")
        inside = mask.to(dtype)
    elif box is not None:
        inside = torch.zeros(spatial, dtype=dtype)
        inside[tuple(slice(a, b) for a, b in box)] = 1
    if channel is None:
        weight[:] = inside
    else:
        weight[channel] = inside
    return weight


class SlidingTarget:
    """What is explained: a fixed weighting of the blended output ``(K, *spatial)`` (a class in a
    mask or a box), or a ``head`` (blended output ``(1, K, *spatial)`` -> one score), linearised
    at the blended output of the input being explained."""

    def __init__(self, weight: torch.Tensor | None = None, head: Callable[[torch.Tensor], torch.Tensor] | None = None):
        if (weight is None) == (head is None):
            raise InputError("give the target as a weighting of the output or as a head, one of them")
        self.weight = weight
        self.head = head


def weighed_windows(starts: Sequence[tuple[int, ...]], weight: torch.Tensor, roi: Sequence[int]) -> list[tuple[int, ...]]:
    """The window ``starts`` whose outputs ``weight`` ``(K, *spatial)`` weighs: the others add
    nothing to the target (nor to its gradient), so they are never run."""
    return [s for s in starts if bool(weight[(slice(None), *_slices(s, roi))].any())]


@contextmanager
def planned(progress: Progress, note: str | None, total: int, desc: str) -> Iterator[Callable[[int], None]]:
    """Say the plan (``planned: note``) before a method runs, then advance a bar of ``total``
    window evaluations: every sliding-window method tells its cost and its progress alike."""
    if note:
        progress(f"planned: {note}")
    with progress.counter(total, desc, unit="window") as advance:
        yield advance


def gradient_plan(method: str, windows: int, batch: int, passes: int = 1, forward_only: int = 0) -> str:
    """The plan of a gradient method in words: ``windows`` run forward and backward ``passes``
    times (integrated gradients: once per path point), in batches of ``batch``, and
    ``forward_only`` more windows run forward only (Grad-CAM's blending pass)."""
    total = windows * passes + forward_only
    batches = math.ceil(windows / batch) * passes + math.ceil(forward_only / batch)
    times = f"{passes} path points x " if passes > 1 else ""
    text = f"{method} through {times}{windows:,} windows forward and backward"
    if forward_only:
        text += f", then {forward_only:,} windows forward"
    return f"{text}: {total:,} window evaluations in {batches:,} batches of up to {batch}"


def _run_windows(model, volume, stitching, starts):
    patches = torch.cat([volume[(slice(None), slice(None), *_slices(s, stitching.windows.roi))] for s in starts])
    return scores_of(model(patches))


def blended_output(model: nn.Module, x: torch.Tensor, windows: Windows) -> torch.Tensor:
    """The inferer's output ``(1, K, *spatial)`` for one volume ``x`` ``(1, C, *spatial)``, window
    batch by window batch (a reference; equal to MONAI's ``sliding_window_inference``)."""
    stitching = Stitching(windows, x.shape[2:], x.dtype, x.device)
    out = None
    with torch.inference_mode():
        for i in range(0, len(stitching.starts), windows.batch):
            batch = stitching.starts[i : i + windows.batch]
            y = _run_windows(model, x, stitching, batch)
            if out is None:
                out = x.new_zeros((1, y.shape[1], *stitching.spatial))
            for s, yi in zip(batch, y):
                out[(0, slice(None), *_slices(s, windows.roi))] += yi * stitching.importance
    return out / stitching.norm


def _weight_of(model, x, windows, target: SlidingTarget) -> torch.Tensor:
    if target.weight is not None:
        return target.weight.to(dtype=x.dtype, device=x.device)
    out = blended_output(model, x, windows).detach().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(target.head(out).sum(), out)
    return grad[0]


def sliding_gradient(model: nn.Module, x: torch.Tensor, target: SlidingTarget, windows: Windows,
                     *, layer: nn.Module | None = None, on_layer: Callable | None = None,
                     advance: Callable[[int], None] = lambda n: None) -> tuple[torch.Tensor, float]:
    """``dT/dx`` ``(1, C, *spatial)`` and the target score ``T``, one window batch at a time.

    With ``layer``, ``on_layer(starts, activation, gradient)`` receives each window batch's layer
    output and ``dT/d(layer output)`` instead (the input gradient is then not formed). Windows
    whose outputs the target does not weigh are skipped: their gradients are zero. ``advance(n)``
    hears each batch of ``n`` windows run."""
    from medlens.core.hooks import capture

    stitching = Stitching(windows, x.shape[2:], x.dtype, x.device)
    weight = _weight_of(model, x, windows, target)
    grad = torch.zeros_like(x)
    score = 0.0
    starts = weighed_windows(stitching.starts, weight, windows.roi)
    for i in range(0, len(starts), windows.batch):
        batch = starts[i : i + windows.batch]
        patches = torch.cat([x[(slice(None), slice(None), *_slices(s, windows.roi))] for s in batch]).detach()
        cot = torch.stack([weight[(slice(None), *_slices(s, windows.roi))] * stitching.weights(s) for s in batch])
        with torch.enable_grad():
            if layer is None:
                patches.requires_grad_(True)
                y = scores_of(model(patches))
                (g,) = torch.autograd.grad(y, patches, cot)
                for s, gi in zip(batch, g):
                    grad[(0, slice(None), *_slices(s, windows.roi))] += gi
            else:
                with capture(model, layer, detach=False) as record:
                    y = scores_of(model(patches))
                act = record.activation
                (g,) = torch.autograd.grad(y, act, cot)
                on_layer(batch, act.detach(), g)
        score += float((y.detach() * cot).sum())
        advance(len(batch))
    return grad, score


def sliding_integrated_gradients(model, x, target: SlidingTarget, windows: Windows, *, n_steps: int = 16,
                                 baseline: Any = "zero",
                                 advance: Callable[[int], None] = lambda n: None) -> torch.Tensor:
    """Integrated gradients (Gauss-Legendre, as :mod:`~medlens.attribution.integrated_gradients`)
    through the windows: ``n_steps`` sliding-window gradients (``advance`` hears every batch)."""
    from medlens.attribution.integrated_gradients import path_nodes

    reference = resolve_baseline(x, baseline)
    alphas, weights = path_nodes("gausslegendre", n_steps)
    total = torch.zeros_like(x)
    for a, w in zip(alphas.tolist(), weights.tolist()):
        g, _ = sliding_gradient(model, reference + a * (x - reference), target, windows, advance=advance)
        total += w * g
    return total * (x - reference)


def sliding_gradcam(model, x, target: SlidingTarget, windows: Windows, layer: nn.Module,
                    advance: Callable[[int], None] = lambda n: None) -> torch.Tensor:
    """Grad-CAM of the whole volume ``(1, 1, *spatial)``: channel weights from every window's
    ``dT/dA``, each window's ``ReLU(sum_k w_k A_k)`` upsampled to the window and blended
    (``advance`` hears every batch of both passes)."""
    from medlens.core.hooks import capture
    from medlens.core.resize import upsample_to

    sums: list[torch.Tensor] = []
    cells = [0]  # locations of one window's layer output

    def add(starts, act, g):
        sums.append(g.sum(dim=(0, *range(2, g.ndim))))
        cells[0] = g[0, 0].numel()

    sliding_gradient(model, x, target, windows, layer=layer, on_layer=add, advance=advance)
    stitching = Stitching(windows, x.shape[2:], x.dtype, x.device)
    # the mean over every window's layer output; the windows not run had zero gradients there
    total = torch.stack(sums).sum(0) / (cells[0] * len(stitching.starts)) if sums else None
    cam = torch.zeros(x.shape[2:], dtype=x.dtype, device=x.device)
    with torch.inference_mode():
        for i in range(0, len(stitching.starts), windows.batch):
            batch = stitching.starts[i : i + windows.batch]
            with capture(model, layer) as record:
                _run_windows(model, x, stitching, batch)
            act = record.activation
            w = (total if total is not None else act.new_zeros(act.shape[1])).view(1, -1, *([1] * len(windows.roi)))
            maps = F.relu((w * act).sum(dim=1, keepdim=True))
            maps = upsample_to(maps, windows.roi)
            for s, m in zip(batch, maps):
                cam[_slices(s, windows.roi)] += m[0] * stitching.importance
            advance(len(batch))
    return (cam / stitching.norm)[None, None]


def sliding_occlusion(model, x, target: SlidingTarget, windows: Windows, *, window: Sequence[int],
                      stride: Sequence[int] | None = None, baseline: Any = 0.0,
                      inside: Sequence[tuple[int, int]] | None = None,
                      progress: Progress = SILENT) -> tuple[torch.Tensor, int]:
    """Occlusion (mean drop over the patches covering each voxel, as
    :func:`~medlens.attribution.occlusion.occlusion`) through the windows, re-evaluating only
    the windows a patch overlaps (and, of those, only the windows whose outputs the target
    weighs); each such window is cut out and occluded on its own, so no copy of the whole volume
    is made per patch. Returns the map ``(1, 1, *spatial)`` and the number of window
    evaluations spent (the unoccluded pass included: the count
    :func:`~medlens.attribution.sliding_occlusion_plan.evaluation_count` plans), advancing
    ``progress`` window by window. ``inside``: the volume's ``(start, stop)`` per dimension in
    ``x`` when ``x`` is the volume padded to the roi; patches wholly in that padding are not run
    (their map is cropped away; :func:`~medlens.attribution.sliding_occlusion_plan.patch_starts`)."""
    from medlens.attribution.occlusion import coverage
    from medlens.attribution.sliding_occlusion_plan import patch_starts, touches

    if target.head is not None:
        raise InputError("occlusion through sliding windows explains a class inside a mask or a box (weight=)")
    spatial = x.shape[2:]
    stride = tuple(stride) if stride is not None else tuple(max(1, w // 2) for w in window)
    stitching = Stitching(windows, spatial, x.dtype, x.device)
    weight = target.weight.to(dtype=x.dtype, device=x.device)
    reference = resolve_baseline(x, baseline)
    # a window whose outputs the target does not weigh adds nothing to any drop: never run it
    active = weighed_windows(stitching.starts, weight, windows.roi)
    cots = {s: weight[(slice(None), *_slices(s, windows.roi))] * stitching.weights(s) for s in active}
    base: dict[tuple, float] = {}
    evals = 0
    patches = list(itertools.product(*patch_starts(spatial, window, stride, inside)))
    # every (patch, window it touches) pair, in patch order: only these windows change
    pairs = [(p, s) for p in patches for s in active if touches(p, window, s, windows.roi)]
    patch_drop = {p: 0.0 for p in patches}
    with torch.inference_mode(), planned(progress, None, len(active) + len(pairs), "occlusion") as advance:
        for i in range(0, len(active), windows.batch):
            batch = active[i : i + windows.batch]
            y = _run_windows(model, x, stitching, batch)
            evals += len(batch)
            advance(len(batch))
            for s, yi in zip(batch, y):
                base[s] = float((yi * cots[s]).sum())
        for i in range(0, len(pairs), windows.batch):
            batch = pairs[i : i + windows.batch]
            # each touched window is cut from the volume and occluded where the patch overlaps it
            patches = torch.cat([x[(slice(None), slice(None), *_slices(s, windows.roi))] for _, s in batch])
            for row, (p, s) in enumerate(batch):
                local = tuple(slice(max(a - si, 0), min(a + w, si + r) - si)
                              for a, w, si, r in zip(p, window, s, windows.roi))
                inside = tuple(slice(si + sl.start, si + sl.stop) for sl, si in zip(local, s))
                patches[(row, slice(None), *local)] = reference[(0, slice(None), *inside)]
            y = scores_of(model(patches))
            evals += len(batch)
            advance(len(batch))
            for (p, s), yi in zip(batch, y):
                patch_drop[p] += base[s] - float((yi * cots[s]).sum())
        drops = torch.zeros(spatial, dtype=x.dtype, device=x.device)
        for p, drop in patch_drop.items():
            drops[_slices(p, window)] += drop
    counts = torch.ones(())
    for dim, (n, w, s) in enumerate(zip(spatial, window, stride)):
        shape = [1] * len(spatial)
        shape[dim] = n
        counts = counts * coverage(n, w, s).view(shape)
    return (drops / counts.to(x.dtype))[None, None], evals


def sliding_score(model: nn.Module, x: torch.Tensor, target: SlidingTarget, windows: Windows) -> float:
    """The target ``T = sum_w <c_w, f(x_w)>`` of a weighting target, running only the windows it weighs."""
    stitching = Stitching(windows, x.shape[2:], x.dtype, x.device)
    weight = target.weight.to(dtype=x.dtype, device=x.device)
    active = weighed_windows(stitching.starts, weight, windows.roi)
    cots = {s: weight[(slice(None), *_slices(s, windows.roi))] * stitching.weights(s) for s in active}
    score = 0.0
    with torch.inference_mode():
        for i in range(0, len(active), windows.batch):
            batch = active[i : i + windows.batch]
            y = _run_windows(model, x, stitching, batch)
            score += sum(float((yi * cots[s]).sum()) for s, yi in zip(batch, y))
    return score


METHODS = ("gradient", "integrated_gradients", "gradcam", "occlusion")
OPTIONS = {"gradient": (), "integrated_gradients": ("n_steps", "baseline"), "gradcam": ("layer",),
           "occlusion": ("window", "stride", "baseline")}


def explain_sliding_window(model: nn.Module, x: torch.Tensor, inferer: Any, method: str = "gradient", *,
                           target_class: int | None = None, mask: torch.Tensor | None = None,
                           box: Sequence[tuple[int, int]] | None = None,
                           head: Callable[[torch.Tensor], torch.Tensor] | None = None,
                           details: bool = False, progress: Progress = SILENT, **options: Any) -> Any:
    """Explain a patch model used through sliding-window inference on a whole volume.

    Parameters
    ----------
    model : nn.Module
        The patch model: ``(n, C, *roi)`` -> ``(n, K, *roi)``.
    x : torch.Tensor
        One volume ``(1, C, *spatial)`` (or ``(C, *spatial)``).
    inferer : Windows, MONAI SlidingWindowInferer or mapping
        ``roi_size``, ``overlap``, ``mode`` (constant or gaussian), ``sigma_scale``, ``sw_batch_size``.
    method : {"gradient", "integrated_gradients", "gradcam", "occlusion"}
    target_class, mask, box : optional
        A segmentation target: the blended output of class ``target_class`` summed inside
        ``mask`` (``(*spatial)``) or ``box`` (``[(start, stop)]`` per dimension).
    head : callable, optional
        A classification head on the blended output ``(1, K, *spatial)`` -> one score (gradient
        methods: linearised at the input's blended output).
    **options
        ``n_steps``, ``baseline`` (integrated gradients); ``layer`` (Grad-CAM: a module of the
        patch model or its dotted name; default: the last layer that keeps the window's spatial
        rank, :func:`~medlens.attribution.cam.probe_cam_layer` on the first window);
        ``window``, ``stride``, ``baseline`` (occlusion; stride default half the window; with
        neither window nor stride, both are chosen from the counted cost of the window
        evaluations, :func:`~medlens.attribution.sliding_occlusion_plan.plan_occlusion`: the
        finest share of the roi whose whole-volume cost fits what plain occlusion's default
        spends; ``details=True`` then says what was chosen). An explicit window or stride is
        run as given.

    details : bool
        Return a :class:`SlidingExplanation`: the map, the target's value ``T`` (a weighting
        target: one more forward pass of the windows it weighs; ``None`` for a head) and the
        result's extras (occlusion at its defaults: the window and stride chosen from the
        counted cost, ``extras["chosen"]``, and a note saying so, ``extras["note"]``).
    progress : Progress
        Where every method says its planned window evaluations before it runs (``planned: ...``),
        and its progress while it runs (default: silent).

    Returns
    -------
    torch.Tensor, or SlidingExplanation with ``details``
        The map on the whole volume: ``(1, C, *spatial)`` for the gradient methods, ``(1, 1,
        *spatial)`` for Grad-CAM and occlusion.
    """
    from medlens.core.options import check_known

    if method not in METHODS:
        raise InputError(f"unknown method {method!r} for sliding-window inference; choose one of {', '.join(METHODS)}")
    check_known("method", method, options, OPTIONS[method])
    if len(Windows.of(inferer, x.ndim - 2).roi) == x.ndim - 1:  # (C, *spatial) with the roi given per axis
        x = x[None]
    windows = Windows.of(inferer, x.ndim - 2)
    if len(windows.roi) != x.ndim - 2:
        raise InputError(f"the roi {windows.roi} does not have the volume's {x.ndim - 2} spatial dimensions")
    x = model_input(model, x)  # an int16 CT volume in HU reaches a float32 model as float32
    spatial = tuple(x.shape[2:])
    # a volume smaller than the roi is padded with zeros on both sides, as MONAI's inferer does
    pads = [(max(r - n, 0) // 2, max(r - n, 0) - max(r - n, 0) // 2) for n, r in zip(spatial, windows.roi)]
    if any(a or b for a, b in pads):
        flat = [v for a, b in reversed(pads) for v in (a, b)]
        x = F.pad(x, flat)
        mask = F.pad(mask.to(x.dtype), flat) if mask is not None else None
        box = [(a + p, b + p) for (a, b), (p, _) in zip(box, pads)] if box is not None else None
    inside = [(a, a + n) for (a, _), n in zip(pads, spatial)]  # the volume within the padded grid
    crop = (slice(None), slice(None), *(slice(a, b) for a, b in inside))
    with evaluation_mode(model):  # every module's own training flag is restored after
        first = x[(slice(None), slice(None), *_slices((0,) * len(windows.roi), windows.roi))]
        try:
            with torch.inference_mode():
                shape = tuple(scores_of(model(first)).shape)
        except RuntimeError as err:  # e.g. a U-Net whose strides do not divide the roi
            reason = next((line.strip() for line in str(err).splitlines()[::-1] if "Error" in line), "")
            raise InputError(
                f"the patch model rejects a window of {tuple(first.shape)} (does the roi fit the model, e.g. a "
                f"multiple of its total stride?): {reason or str(err).splitlines()[0]}"
            ) from err
        if len(shape) != x.ndim or shape[2:] != windows.roi:
            raise InputError(
                f"the patch model maps a {windows.roi} window to an output of shape {shape}; sliding-window "
                "inference blends outputs that cover the window (a segmentation model's (1, K, *roi))"
            )
        if target_class is not None and not 0 <= target_class < shape[1]:
            raise InputError(f"target class {target_class} is out of range: the patch model has {shape[1]} output "
                             f"channels (0..{shape[1] - 1})")
        if head is not None:
            target = SlidingTarget(head=head)
        else:
            target = SlidingTarget(weight=region_weight(x.shape[2:], shape[1], channel=target_class, mask=mask,
                                                        box=box, dtype=x.dtype))
        values, extras, score = _explain(model, x, target, windows, method, first, options, progress, inside)
        if not details:
            return values[crop]
        if score is None and target.weight is not None:  # the gradient's own pass gave it already
            score = sliding_score(model, x, target, windows)
        return SlidingExplanation(values[crop], score, extras)


class SlidingExplanation(NamedTuple):
    """A whole-volume map with the target's value and the result's extras."""

    values: torch.Tensor
    score: float | None
    extras: dict


def _explain(model, x, target: SlidingTarget, windows: Windows, method: str, first: torch.Tensor,
             options: dict, progress: Progress,
             inside: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, dict, float | None]:
    """One method on the (padded) volume, its extras and the target's value when the method's own
    pass gave it (the gradient's: no second pass of the windows for ``details``); ``first`` is
    its first window, ``inside`` the volume within the padded grid."""
    if method in ("gradient", "integrated_gradients", "gradcam"):
        every = windows.starts(tuple(x.shape[2:]))
        # a head's weighting is known only once it runs: plan every window (it usually weighs them all)
        run = len(every) if target.head is not None else len(weighed_windows(every, target.weight, windows.roi))
        passes = int(options.get("n_steps", 16)) if method == "integrated_gradients" else 1
        blend = len(every) if method == "gradcam" else 0
        note = gradient_plan(method, run, windows.batch, passes, blend)
        with planned(progress, note, run * passes + blend, method) as advance:
            if method == "gradient":
                values, score = sliding_gradient(model, x, target, windows, advance=advance)
                return values, {}, score if target.weight is not None else None
            if method == "integrated_gradients":
                return sliding_integrated_gradients(model, x, target, windows, advance=advance, **options), {}, None
            from medlens.attribution.cam import resolve_cam_layer

            layer = resolve_cam_layer(model, options.get("layer"), first)
            return sliding_gradcam(model, x, target, windows, layer, advance=advance), {}, None
    if method == "occlusion":
        return (*_occlude(model, x, target, windows, first, options, progress, inside), None)
    raise AssertionError(method)  # METHODS are all handled above


def _occlude(model, x, target: SlidingTarget, windows: Windows, first: torch.Tensor, options: dict,
             progress: Progress, inside: Sequence[tuple[int, int]]) -> tuple[torch.Tensor, dict]:
    """Occlusion with the window and stride given, or chosen from the counted cost
    (:func:`~medlens.attribution.sliding_occlusion_plan.plan_occlusion`); says the plan first."""
    from medlens.attribution.sliding_occlusion_plan import plan_occlusion
    from medlens.core.cost import forward_cost

    if target.head is not None:
        raise InputError("occlusion through sliding windows explains a class inside a mask or a box (weight=)")
    n, spatial = x.ndim - 2, tuple(x.shape[2:])
    win = per_dim(options["window"], n, "window") if options.get("window") is not None else None
    stride = per_dim(options["stride"], n, "stride") if options.get("stride") is not None else None
    if win is not None and any(w > m for w, m in zip(win, spatial)):
        raise InputError(f"the occlusion window {win} is larger than the volume {spatial}")
    weight = target.weight.to(dtype=x.dtype, device=x.device)
    active = weighed_windows(windows.starts(spatial), weight, windows.roi)
    plan = plan_occlusion(spatial, windows.roi, active, forward_cost(model, first), win, stride, inside)
    if any(s > w for s, w in zip(plan.stride, plan.window)):
        raise InputError(f"the stride {plan.stride} exceeds the window {plan.window}: some voxels would never be "
                         "occluded")
    progress(f"planned: {plan.note}")
    values, _ = sliding_occlusion(model, x, target, windows, window=plan.window, stride=plan.stride,
                                  baseline=options.get("baseline", 0.0), inside=inside, progress=progress)
    if not plan.chosen:
        return values, {}
    return values, {"chosen": {"window": plan.window, "stride": plan.stride, "window_evaluations": plan.evaluations},
                    "note": plan.note}
