"""Explainable haemorrhage detection on head CT, rebuilt on medlens's pieces (Lee et al. 2019).

Lee et al., "An explainable deep-learning algorithm for the detection of acute intracranial
haemorrhage from small datasets", Nature Biomedical Engineering 3, 173-182 (2019), feed a
network several CT windows of the same slice at once (brain, subdural, bone), read a slice with
its neighbours as context (as a radiologist scrolls), detect haemorrhage and its five subtypes,
and explain each decision with an attention (CAM) map and a prediction basis of similar
training slices.

Here the pieces are medlens's own:

* input: the recipe mechanism (:class:`medlens.data.recipe.Recipe` with the three
  :data:`~medlens.data.recipe.WINDOW_PRESETS`, applied by
  :func:`~medlens.data.recipe.prepare` to each CT volume read or generated in HU), so a
  hospital's DICOM series and the phantoms go through the same code; the recipe is stored in
  the model file;
* **2.5D**: slice ``z`` with its ``context`` neighbours on each side, channels ordered
  ``(offset, window)``: channel ``(o + context) * W + w`` is window ``w`` of slice ``z + o``
  (edges repeat the first/last slice); **3D**: the windowed volume ``(W, D, H, W)``;
* classes: 0 = no haemorrhage, ``k + 1`` = subtype ``SUBTYPES[k]``; detection score
  ``1 - p(none)``, subtype ``argmax`` over the five subtype classes;
* explanations: any registered method (Grad-CAM per slice, stacked into a per-volume map), the
  prediction basis (:mod:`medlens.selfexplain.basis`, composed in the benchmark/app layer), and
  the windows' contribution: the share of an attribution's magnitude on each window's channels
  (:func:`window_shares`), the drop of the predicted subtype's probability when one window's
  channels are taken from the blood-free twin (:func:`window_swap`, in distribution), and as a
  secondary number the drop when they are replaced by their training mean
  (:func:`window_ablation`, a flat channel the model never saw).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from medlens.core import engine
from medlens.core.engine import Budget
from medlens.data.formats.common import Volume
from medlens.data.synthetic.head_ct import SUBTYPES, HeadCTSet
from medlens.data.recipe import WINDOW_PRESETS, Recipe, prepare
from medlens.errors import InputError

#: the windows of Lee et al., one input channel each, in this order
WINDOWS = ("brain", "subdural", "bone")
CLASS_NAMES = ("none",) + SUBTYPES


def haemorrhage_recipe(windows: Sequence[str] = WINDOWS) -> Recipe:
    """The recipe of the haemorrhage models: one channel per CT window (centre/width in HU)."""
    return Recipe(windows=tuple(WINDOW_PRESETS[w] for w in windows))


def windowed(volume: torch.Tensor, spacing: Sequence[float], recipe: Recipe) -> torch.Tensor:
    """One CT volume ``(D, H, W)`` in HU -> ``(W_n, D, H, W)`` through ``recipe`` (its windows).

    The volume is wrapped as the :class:`~medlens.data.formats.common.Volume` a CT reader returns and
    passed to :func:`~medlens.data.recipe.prepare`, the code path of ``medlens explain``.
    """
    record = Volume(volume.float(), tuple(float(s) for s in spacing), {"Modality": "CT"}, format="NIfTI")
    return prepare(record, recipe).x[0]


def stack_context(windows: torch.Tensor, context: int) -> torch.Tensor:
    """``(W_n, D, H, W)`` -> 2.5D slices ``(D, (2 context + 1) W_n, H, W)``, edges repeated."""
    n_w, d = windows.shape[:2]
    idx = (torch.arange(d)[:, None] + torch.arange(-context, context + 1)[None]).clamp(0, d - 1)  # (D, 2c+1)
    # (W_n, D, 2c+1, H, W) -> (D, 2c+1, W_n, H, W): channel (o + c) * W_n + w
    return windows[:, idx].permute(1, 2, 0, 3, 4).reshape(d, (2 * context + 1) * n_w, *windows.shape[2:])


@dataclass(frozen=True)
class SliceData:
    """2.5D slices of a set of head CTs.

    Attributes
    ----------
    inputs : torch.Tensor
        float32 ``(M, (2 context + 1) * n_windows, H, W)``.
    labels : torch.Tensor
        int64 ``(M,)``: 0 none, ``k + 1`` subtype ``k``.
    masks : torch.Tensor
        bool ``(M, H, W)``: blood on the slice.
    case, slice : torch.Tensor
        int64 ``(M,)``: where each slice comes from.
    context : int
    n_windows : int
    """

    inputs: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor
    case: torch.Tensor
    slice: torch.Tensor
    context: int
    n_windows: int


def slice_data(data: HeadCTSet, recipe: Recipe | None = None, *, context: int = 1, min_voxels: int = 3) -> SliceData:
    """Every slice of every case as a 2.5D input with its label and mask.

    A slice is positive when it holds at least ``min_voxels`` voxels of blood (a sliver of one or
    two voxels at the tip of a lesion is not something a reader could call).
    """
    recipe = recipe or haemorrhage_recipe()
    if context < 0:
        raise InputError(f"context must be >= 0 slices, got {context}")
    inputs, labels, masks, cases, slices = [], [], [], [], []
    per_slice = data.slice_subtypes(min_voxels)  # (N, D)
    for i in range(len(data)):
        w = windowed(data.volumes[i], data.spacing, recipe)
        inputs.append(stack_context(w, context))
        labels.append(per_slice[i] + 1)
        masks.append((data.haemorrhage[i] > 0) & (per_slice[i] >= 0)[:, None, None])
        d = data.volumes.shape[1]
        cases.append(torch.full((d,), i, dtype=torch.int64))
        slices.append(torch.arange(d))
    return SliceData(torch.cat(inputs), torch.cat(labels), torch.cat(masks), torch.cat(cases), torch.cat(slices),
                     context, len(recipe.windows))


def volume_data(data: HeadCTSet, recipe: Recipe | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Windowed volumes ``(N, n_windows, D, H, W)`` and labels ``(N,)`` (0 none, ``k + 1`` subtype)."""
    recipe = recipe or haemorrhage_recipe()
    x = torch.stack([windowed(data.volumes[i], data.spacing, recipe) for i in range(len(data))])
    return x, data.subtype + 1


def detection_score(probs: torch.Tensor) -> torch.Tensor:
    """``(B,)`` probability of any haemorrhage, ``1 - p(none)``, from class probabilities ``(B, 6)``."""
    return 1.0 - probs[:, 0]


def subtype_prediction(probs: torch.Tensor) -> torch.Tensor:
    """``(B,)`` subtype index (into ``SUBTYPES``) of the most probable subtype class."""
    return probs[:, 1:].argmax(1)


def case_probabilities(slice_probs: torch.Tensor, case: torch.Tensor, n_cases: int) -> torch.Tensor:
    """Per-case class probabilities ``(n_cases, 6)`` from slice probabilities ``(M, 6)``.

    Detection as a radiologist reads a stack: the case's ``p(none)`` is that of its most
    suspicious slice (the smallest); the subtype distribution given blood is the slices'
    conditional subtype distributions ``p(k) / (1 - p(none))`` averaged with weights
    ``1 - p(none)`` (the slices that show blood decide), i.e. ``sum_slices p(k) / sum_slices
    (1 - p(none))``; rows sum to 1.
    """
    out = torch.zeros(n_cases, slice_probs.shape[1], dtype=slice_probs.dtype)
    for c in range(n_cases):
        p = slice_probs[case == c]
        none = p[:, 0].min()
        sub = p[:, 1:].sum(0) / p[:, 1:].sum().clamp(min=1e-300)
        out[c, 0], out[c, 1:] = none, (1 - none) * sub
    return out


def window_shares(attribution: torch.Tensor, n_windows: int) -> torch.Tensor:
    """Share of an attribution's magnitude on each window, ``(B, n_windows)``, rows summing to 1.

    ``attribution`` ``(B, C, *spatial)`` on inputs whose channel ``c`` is window ``c % n_windows``
    (the 2.5D order of :func:`stack_context`; a 3D input has ``C = n_windows``).
    """
    b, c = attribution.shape[:2]
    if c % n_windows:
        raise InputError(f"{c} channels are not a whole number of {n_windows} windows")
    mag = attribution.abs().reshape(b, c // n_windows, n_windows, -1).sum((1, 3))
    return mag / mag.sum(1, keepdim=True).clamp(min=1e-300)


def window_swap(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    n_windows: int,
    replacement: torch.Tensor,
    *,
    batch_size: int | None = None,
    memory_mb: float | None = None,
) -> torch.Tensor:
    """Drop of the target probability when one window's channels are taken from ``replacement``.

    The in-distribution measure of a window's contribution: with ``replacement`` the blood-free
    twins of the inputs (:func:`medlens.data.synthetic.head_ct.make_head_ct` with ``haemorrhage=False``,
    windowed the same way), swapping window ``w`` removes the blood from that window only and
    leaves an input of the kind the model was trained on (a slice without blood), unlike a flat
    channel.

    Parameters
    ----------
    model : nn.Module
        Classifier ``(B, K)``.
    x : torch.Tensor
        ``(B, C, *spatial)``, channel ``c`` is window ``c % n_windows``.
    target : torch.Tensor
        ``(B,)`` class whose probability is read.
    replacement : torch.Tensor
        Broadcastable to ``x``: the values that replace a window's channels.

    Returns
    -------
    torch.Tensor
        ``(B, n_windows)``: ``p(target | x) - p(target | x with window w from replacement)``.
    """
    b, c = x.shape[:2]
    if c % n_windows:
        raise InputError(f"{c} channels are not a whole number of {n_windows} windows")
    try:
        replacement = torch.broadcast_to(replacement.to(x.dtype), x.shape)
    except RuntimeError as exc:
        raise InputError(f"replacement of shape {tuple(replacement.shape)} does not fit inputs {tuple(x.shape)}") from exc
    window_of = torch.arange(c) % n_windows

    def build(start: int, stop: int) -> torch.Tensor:
        rows = []
        for r in range(start, stop):
            i, w = divmod(r, n_windows + 1)
            xi = x[i].clone()
            if w < n_windows:  # the last row of each input is the input itself
                xi[window_of == w] = replacement[i][window_of == w]
            rows.append(xi)
        return torch.stack(rows)

    out = engine.run(model, b * (n_windows + 1), build, mode="forward",
                     budget=Budget(batch_size, memory_mb)).outputs
    probs = torch.softmax(out.double(), dim=1).reshape(b, n_windows + 1, -1)
    p = probs.gather(2, target.reshape(b, 1, 1).expand(b, n_windows + 1, 1))[..., 0]  # (B, W + 1)
    return p[:, -1:] - p[:, :-1]


def window_ablation(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    n_windows: int,
    fill: torch.Tensor,
    *,
    batch_size: int | None = None,
    memory_mb: float | None = None,
) -> torch.Tensor:
    """Drop of the target probability when one window's channels are set to a constant, ``(B, n_windows)``.

    :func:`window_swap` with ``fill[w]`` (e.g. the window's mean over the training inputs) in
    every element of window ``w``. A flat channel is an input the model never saw, so this is a
    secondary, out-of-distribution measure; prefer the blood-free twins.
    """
    c = x.shape[1]
    if c % n_windows:
        raise InputError(f"{c} channels are not a whole number of {n_windows} windows")
    per_channel = fill.to(x.dtype)[torch.arange(c) % n_windows]
    replacement = per_channel.reshape(1, c, *([1] * (x.ndim - 2)))
    return window_swap(model, x, target, n_windows, replacement, batch_size=batch_size, memory_mb=memory_mb)


def stacked_volume_maps(slice_maps: torch.Tensor, case: torch.Tensor, slices: torch.Tensor, cases: Sequence[int],
                        depth: int) -> torch.Tensor:
    """Slice maps ``(M, 1, H, W)`` of many cases -> one volume map per case, ``(len(cases), 1, depth, H, W)``.

    ``case`` and ``slices`` ``(M,)`` say where each map belongs; each case's stack goes through
    :func:`volume_map` (rescaled by the case's largest value), so a volume map can be scored
    against the case's 3D mask with the same pointing game and mass in mask as a 3D model's map.
    """
    out = torch.zeros(len(cases), 1, depth, *slice_maps.shape[2:], dtype=slice_maps.dtype)
    for j, c in enumerate(cases):
        sel = case == int(c)
        out[j, 0] = volume_map(slice_maps[sel], slices[sel], depth)
    return out


def volume_map(slice_maps: torch.Tensor, slices: torch.Tensor, depth: int) -> torch.Tensor:
    """Per-slice maps ``(D', 1, H, W)`` of one case (slice indices ``(D',)``) -> volume ``(depth, H, W)``.

    Slices not given stay zero; each map is rescaled by the case's largest value so that slices
    compare within the case (the per-volume view of Lee et al.'s slice-wise attention maps).
    """
    out = torch.zeros(depth, *slice_maps.shape[2:], dtype=slice_maps.dtype)
    out[slices] = slice_maps[:, 0]
    top = out.abs().max()
    return out / top if top > 0 else out
