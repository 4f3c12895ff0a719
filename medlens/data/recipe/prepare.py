"""Applying a recipe: a record becomes a model input with the geometry that maps a map back."""


from __future__ import annotations

import dataclasses
import json
import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from medlens.core import layers as by_rank
from medlens.core.numbering import slice_words
from medlens.data.formats.common import Volume
from medlens.data.formats.signals import Signal
from medlens.data.recipe.spec import _LUMA, Recipe, Record
from medlens.errors import InputError


@dataclass(frozen=True)
class Geometry:
    """What :func:`prepare` did to the grid, enough to map a model-grid map back.

    Attributes
    ----------
    kind : {"image", "signal"}
    original_shape : tuple of int
        Spatial shape of the record (``(H, W)``, ``(D, H, W)`` or ``(L,)``).
    slice_index : int or None
        The slice along :attr:`slice_axis` a 2-D model saw of a volume.
    resampled_shape : tuple of int
        Shape after resampling/resizing, before cropping or padding.
    pads : tuple of (int, int)
        Per axis, samples added before and after (negative: removed by cropping).
    model_shape : tuple of int
        Spatial shape of the model input.
    channel_index : tuple of int
        Signals: the record's channels the model saw, in order.
    n_channels : int
        Signals: channels of the record.
    span : (int, int)
        Signals: first and one-past-last original sample of the window.
    record_fs, model_fs : float or None
        Signals: the record's sampling rate and the rate the model saw it at (Hz; equal when the
        record was not resampled).
    slice_axis : int
        The volume axis ``slice_index`` counts along (:func:`slice_axis`).
    """

    kind: str
    original_shape: tuple[int, ...]
    slice_index: int | None
    resampled_shape: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]
    model_shape: tuple[int, ...]
    channel_index: tuple[int, ...] = ()
    n_channels: int = 1
    span: tuple[int, int] = (0, 0)
    record_fs: float | None = None
    model_fs: float | None = None
    slice_axis: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``summary.json``, where a volume's kind reads ``"volume"`` (``kind``
        itself says "image" for both, as the grid is carried back the same way)."""
        out = json.loads(json.dumps(dataclasses.asdict(self)))
        if self.kind == "image" and len(self.original_shape) == 3:
            out["kind"] = "volume"
        return out


@dataclass(frozen=True)
class Prepared:
    """A record made into one model input.

    Attributes
    ----------
    x : torch.Tensor
        float32 ``(1, C, *model_spatial)``.
    geometry : Geometry
        For :func:`invert`.
    recipe : Recipe
        The recipe applied.
    notes : tuple of str
        What was done, in words, for the summary.
    """

    x: torch.Tensor
    geometry: Geometry
    recipe: Recipe
    notes: tuple[str, ...] = field(default=())

    def summary(self) -> dict[str, Any]:
        """The applied recipe, the geometry and notes, as plain data for ``summary.json``."""
        return {"recipe": self.recipe.to_dict(), "geometry": self.geometry.to_dict(), "notes": list(self.notes),
                "model_input_shape": list(self.x.shape[1:])}




def resample_grid(x: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """``(C, *src)`` -> ``(C, *shape)``: linear interpolation where an axis grows, averaging where it shrinks.

    Growing axes are interpolated (``align_corners=False``: sample centres keep their physical
    places); shrinking axes are area-averaged, so nothing aliases and a map that is constant over
    each target cell's footprint comes back exactly. Shape-generic: 1, 2 or 3 spatial axes.
    """
    src = tuple(x.shape[1:])
    shape = tuple(int(s) for s in shape)
    if src == shape:
        return x
    nd = len(src)
    if nd not in by_rank.RANKS:
        raise InputError(f"cannot resample a grid with {nd} spatial axes")
    up = tuple(max(a, b) for a, b in zip(src, shape, strict=True))
    y = x[None].float()
    if up != src:
        y = F.interpolate(y, size=up, mode=by_rank.interpolation_mode(nd), align_corners=False)
    if up != shape:
        y = by_rank.adaptive_avg_pool_fn(nd)(y, shape)
    return y[0]


def _pad_or_crop(x: torch.Tensor, target: Sequence[int]) -> tuple[torch.Tensor, tuple[tuple[int, int], ...]]:
    """Centre ``(C, *spatial)`` in ``target``: pad with zeros or crop, per axis."""
    pads = []
    for s, t in zip(x.shape[1:], target, strict=True):
        diff = int(t) - int(s)
        before = diff // 2 if diff >= 0 else -((-diff) // 2)
        pads.append((before, diff - before))
    return _apply_pads(x, pads), tuple(pads)


def _apply_pads(x: torch.Tensor, pads: Sequence[tuple[int, int]]) -> torch.Tensor:
    flat: list[int] = []
    for before, after in reversed(list(pads)):  # F.pad lists the last axis first
        flat += [before, after]
    return F.pad(x, flat) if any(flat) else x  # negative pads crop


def _intensity(x: torch.Tensor, record: Record, recipe: Recipe, notes: list[str]) -> torch.Tensor:
    """``(C, *spatial)`` in file units -> ``(C', *spatial)`` after windows, clipping, normalisation."""
    if recipe.windows:
        _check_hu(record)
        x = torch.cat([((x - (c - w / 2.0)) / w).clamp(0.0, 1.0) for c, w in recipe.windows], dim=0)
        notes.append("CT windows " + ", ".join(f"{c:g}/{w:g} HU" for c, w in recipe.windows) + " as channels")
    if recipe.clip_percentiles is not None:
        lo, hi = torch.quantile(_sample(x), torch.tensor(recipe.clip_percentiles, dtype=torch.float64) / 100.0).tolist()
        x = x.clamp(lo, hi)
        notes.append(f"clipped to percentiles {recipe.clip_percentiles[0]:g}..{recipe.clip_percentiles[1]:g}")
    norm = recipe.normalize
    if norm == "unit":
        top = record.metadata.get("MaxValue") if isinstance(record, Volume) else None
        if top:
            x = x / float(top)
            notes.append(f"divided by {top} (the file's largest value)")
        else:
            norm = "minmax"
            notes.append("no fixed value range in the file: min-max instead of 'unit'")
    if norm == "minmax":
        lo, hi = float(x.min()), float(x.max())
        x = (x - lo) / (hi - lo if hi > lo else 1.0)
        notes.append("min-max scaled to [0, 1]")
    elif norm == "zscore":
        if isinstance(record, Signal):  # per lead
            mu, sd = x.mean(dim=-1, keepdim=True), x.std(dim=-1, keepdim=True)
        else:
            mu, sd = x.mean(), x.std()
        x = (x - mu) / torch.where(sd > 0, sd, torch.ones_like(sd))
        notes.append("z-scored")
    return x


def _sample(x: torch.Tensor, n: int = 1 << 20) -> torch.Tensor:
    """At most ``n`` values of ``x`` (evenly strided) for quantiles (torch.quantile has a size limit)."""
    flat = x.reshape(-1).double()
    return flat if flat.numel() <= n else flat[:: math.ceil(flat.numel() / n)]


def _check_hu(record: Record) -> None:
    if isinstance(record, Signal):
        raise InputError("the recipe has CT windows but the input is a signal")
    modality = record.metadata.get("Modality", "")
    if record.format == "DICOM" and modality != "CT":
        raise InputError(
            f"the recipe has CT windows (HU) but the input is a {modality or 'non-CT'} DICOM image, not CT"
        )
    if record.format in ("PNG", "JPEG", "TIFF"):
        raise InputError(
            f"the recipe has CT windows (HU) but the input is a {record.format} picture, whose grey levels are not HU"
        )


def _channels(x: torch.Tensor, want: int | None, notes: list[str], *, colour: bool) -> torch.Tensor:
    """``x`` ``(C, *spatial)`` with the model's channel count: ``colour`` (an RGB picture) to grey,
    grey repeated; other channels (the volumes of a 4-D NIfTI) must match."""
    c = x.shape[0]
    if want is None or want == c:
        return x
    if c == 3 and want == 1 and colour:
        notes.append("colour converted to grey (BT.601 luma)")
        w = torch.tensor(_LUMA, dtype=x.dtype).reshape(3, *([1] * (x.ndim - 1)))
        return (x * w).sum(dim=0, keepdim=True)
    if c == 1:
        notes.append(f"grey repeated to {want} channels")
        return x.expand(want, *x.shape[1:]).contiguous()
    what = "" if colour else " (the volumes of a 4-D image are its channels)"
    raise InputError(f"the input has {c} channels{what} after preprocessing but the model takes {want}")


def prepare(record: Record, recipe: Recipe) -> Prepared:
    """Apply ``recipe`` to a record read by :func:`medlens.data.formats.read.read`.

    Parameters
    ----------
    record : Volume or Signal
        The image/volume (``array`` ``(*spatial)`` or ``(C, *spatial)``) or signal
        (``values`` ``(C, L)``).
    recipe : Recipe

    Returns
    -------
    Prepared
        ``x`` float32 ``(1, C, *model_spatial)`` and the :class:`Geometry` for :func:`invert`.

    Raises
    ------
    InputError
        The recipe does not fit the record: windows on a non-CT image, an unknown lead, a window
        past the end of the signal, a channel count that cannot be reached, a size of the wrong
        rank.
    """
    if isinstance(record, Signal):
        return _prepare_signal(record, recipe)
    notes: list[str] = []
    x = record.array.float()
    x = x if record.channels > 1 else x[None]  # (C, *spatial)
    original = tuple(int(s) for s in x.shape[1:])
    spacing = tuple(record.spacing[-len(original):]) if record.spacing else (1.0,) * len(original)
    if not bool(torch.isfinite(x).all()):
        n_nan, n_bad = int(torch.isnan(x).sum()), int((~torch.isfinite(x)).sum())
        raise InputError(f"{record.format or 'the input'} image holds NaN or infinite values ({n_nan} NaN and "
                         f"{n_bad - n_nan} infinite of {x.numel()}; NaN often marks voxels outside the field of view "
                         "after resampling): replace them before explaining it")
    x = _intensity(x, record, recipe, notes)
    slice_index = None
    want_rank = len(recipe.size) if recipe.size is not None else (len(recipe.spacing) if recipe.spacing else None)
    if want_rank is not None and len(original) != want_rank:
        _refuse_other_kind(record, want_rank, recipe)
        axis, words = slice_axis(record)
        slice_index = recipe.slice
        if not 0 <= slice_index < original[axis]:
            raise InputError(f"--slice {slice_index} is out of range: the volume has {original[axis]} slices "
                             f"(0..{original[axis] - 1}) along {words}")
        x, spacing = x.select(1 + axis, slice_index), spacing[:axis] + spacing[axis + 1:]
        notes.append(f"{slice_words(slice_index, original[axis])} (--slice {slice_index}) along {words}")
    elif recipe.slice is not None:
        notes.append(_unused_slice(record, want_rank, recipe))
    if recipe.spacing is not None:
        if len(recipe.spacing) != x.ndim - 1:
            raise InputError(f"recipe spacing {recipe.spacing} has {len(recipe.spacing)} axes; the image has {x.ndim - 1}")
        shape = tuple(max(1, round(n * s / t)) for n, s, t in zip(x.shape[1:], spacing, recipe.spacing, strict=True))
        x = resample_grid(x, shape)
        notes.append(f"resampled from spacing {tuple(round(s, 4) for s in spacing)} mm to {recipe.spacing} mm")
    resampled = tuple(int(s) for s in x.shape[1:])
    pads: tuple[tuple[int, int], ...] = tuple((0, 0) for _ in resampled)
    if recipe.size is not None and tuple(recipe.size) != resampled:
        if recipe.fit == "resize" and recipe.spacing is None:
            notes.append(f"resized from {resampled} to {tuple(recipe.size)}")
            x = resample_grid(x, recipe.size)
            resampled = tuple(recipe.size)
        else:
            x, pads = _pad_or_crop(x, recipe.size)
            notes.append(f"centre cropped/padded from {resampled} to {tuple(recipe.size)}")
    x = _channels(x, recipe.out_channels if not recipe.windows else None, notes, colour=record.format != "NIfTI")
    x = _standardise(x, recipe, notes)
    geometry = Geometry("image", original, slice_index, resampled, pads, tuple(int(s) for s in x.shape[1:]),
                        slice_axis=0 if slice_index is None else slice_axis(record)[0])
    return Prepared(x[None].contiguous(), geometry, recipe, tuple(notes))


def slice_axis(record: Record) -> tuple[int, str]:
    """The volume axis ``--slice`` counts along, in words: a NIfTI volume's superior-inferior axis
    (its axial slices, whatever order the file stores its axes in: ``AxisCodes``), else the first
    axis (a DICOM series' slices, a multi-frame file's frames)."""
    codes = str((getattr(record, "metadata", {}) or {}).get("AxisCodes", ""))
    if str(getattr(record, "format", "")).startswith("NIfTI") and len(codes) == 3 and ("S" in codes or "I" in codes):
        axis = codes.index("S") if "S" in codes else codes.index("I")
        return axis, f"axis {axis} (axial: the volume's superior-inferior axis, {codes})"
    return 0, "the first axis"


def _refuse_other_kind(record: Record, want_rank: int, recipe: Recipe) -> None:
    """One line naming both kinds when ``record`` is not what a model of spatial rank
    ``want_rank`` takes; returns only for a volume given to a 2-D model with ``recipe.slice``."""
    from medlens.data.kinds import describe_record, kind_of_rank, kind_words

    model = (kind_words(kind_of_rank(want_rank), recipe.out_channels, recipe.size, fs=recipe.fs)
             if want_rank in (1, 2, 3) else f"{want_rank}-D inputs")
    have = len(record.spatial_shape) if isinstance(record, Volume) else 1
    if isinstance(record, Volume) and want_rank == 2 and have == 3:
        if recipe.slice is not None:
            return
        axis, words = slice_axis(record)
        raise InputError(f"the model takes {model} but the input is {describe_record(record)}: name the slice "
                         f"it should see with --slice K, 0..{record.spatial_shape[axis] - 1} along {words}, or give "
                         "a folder of slices")
    raise InputError(f"the model takes {model} but the input is {describe_record(record)}")


def _unused_slice(record: Record, want_rank: int | None, recipe: Recipe) -> str:
    """Warn that ``--slice`` was not used: the input already has the model's dimensionality (a
    2-D image to a 2-D model, a volume to a 3-D model, a signal) and is seen whole. A warning, not
    a refusal: a folder of cases may mix pictures with volumes whose slice ``--slice`` names. The
    text names the kind, not the case, so a folder's pictures give one warning; returns the note."""
    from medlens.data.kinds import kind_of_rank, kind_of_record, kind_words

    kind = kind_of_record(record)
    model = kind_words(kind_of_rank(want_rank)) if want_rank in (1, 2, 3) else "inputs as they are"
    text = (f"--slice {recipe.slice} not used for a {kind_words(kind)[:-1]}: the model takes {model} "
            "and sees it whole (--slice picks the slice of a volume given to a 2-D model)")
    warnings.warn(text, UserWarning, stacklevel=3)
    return text


def _standardise(x: torch.Tensor, recipe: Recipe, notes: list[str]) -> torch.Tensor:
    if recipe.mean is None and recipe.std is None:
        return x
    c = x.shape[0]
    shape = (c, *([1] * (x.ndim - 1)))

    def per_channel(v: tuple[float, ...] | None, default: float, name: str) -> torch.Tensor:
        v = v if v is not None else (default,)
        if len(v) not in (1, c):
            raise InputError(f"recipe {name} has {len(v)} values but the input has {c} channels")
        return torch.tensor(v * (c if len(v) == 1 else 1), dtype=x.dtype).reshape(shape)

    notes.append("standardised by mean/std per channel")
    return (x - per_channel(recipe.mean, 0.0, "mean")) / per_channel(recipe.std, 1.0, "std")


def lead_indices(channels: Sequence[str], leads: Sequence[str]) -> list[int]:
    """Where each of ``leads`` is among a record's ``channels`` (names compared without case);
    refused in one line naming the first lead the record lacks, its leads and the way out. A name
    the record gives several channels (an EDF may label two signals alike) is taken in their order:
    its second mention in ``leads`` is the record's second channel of that name, never the first
    again."""
    lower = [c.lower() for c in channels]
    missing = [lead for lead in leads if lead.lower() not in lower]
    if missing:
        raise InputError(f"lead {missing[0]!r} is not in the record; it has {', '.join(channels)}: name the record's "
                         "leads the model should take, in its order, with --leads")
    found: list[int] = []
    for lead in leads:
        places = [i for i, c in enumerate(lower) if c == lead.lower()]
        found.append(places[min(sum(lower[j] == lead.lower() for j in found), len(places) - 1)])
    return found


def _refuse_missing(x: torch.Tensor, leads: list[str], t0: float, t1: float) -> None:
    """One line naming the lead and the time when the window the model sees holds samples the
    record marks missing (a record may have gaps elsewhere; only the window's samples matter)."""
    missing = torch.isnan(x)
    if bool(missing.any()):
        per_lead = missing.sum(1).tolist()
        k = next(i for i, n in enumerate(per_lead) if n)
        raise InputError(
            f"{int(missing.sum())} samples of the window {t0:g}..{t1:g} s are missing in the record (lead "
            f"{leads[k]!r}: {per_lead[k]}); choose another --start or other --leads")


def _to_model_units(x: torch.Tensor, record: Signal, idx: list[int], recipe: Recipe, notes: list[str]) -> torch.Tensor:
    """Each lead in the unit the model was trained on: converted when it measures the same thing
    in another unit (uV -> mV), refused when it measures something else (mmHg for mV); a lead
    whose unit either side does not state or this module does not know is taken as it comes."""
    from medlens.data.units import dimension, unit_scale

    if not recipe.units or not record.units or len(recipe.units) != len(idx):
        return x
    scales = []
    for k, (i, want) in enumerate(zip(idx, recipe.units)):
        have = record.units[i] if i < len(record.units) else ""
        scale = unit_scale(have, want)
        if scale is None and dimension(have) and dimension(want):
            raise InputError(
                f"lead {record.channels[i]!r} of the record is in {have} ({dimension(have)}); the model's lead {k + 1} "
                f"was trained in {want} ({dimension(want)}): name the leads that match with --leads")
        scales.append(1.0 if scale is None else scale)
        if scale is not None and scale != 1.0:
            notes.append(f"lead {record.channels[i]} converted from {have} to {want}")
    if all(s == 1.0 for s in scales):
        return x
    return x * torch.tensor(scales, dtype=x.dtype)[:, None]


def _prepare_signal(record: Signal, recipe: Recipe) -> Prepared:
    notes: list[str] = []
    want_rank = len(recipe.size) if recipe.size is not None else (len(recipe.spacing) if recipe.spacing else 1)
    if want_rank != 1:
        _refuse_other_kind(record, want_rank, recipe)
    if recipe.slice is not None:
        notes.append(_unused_slice(record, want_rank, recipe))
    values = record.values.float()
    n_ch, n = int(values.shape[0]), int(values.shape[1])
    if recipe.windows:
        _check_hu(record)
    if recipe.leads is not None:
        idx = lead_indices(record.channels, recipe.leads)
        notes.append(f"leads {', '.join(record.channels[i] for i in idx)}")
    elif recipe.channels is not None:
        if recipe.channels > n_ch:
            raise InputError(f"the model takes {recipe.channels} leads but the record has {n_ch} ({', '.join(record.channels)})")
        idx = list(range(recipe.channels))
        if recipe.channels < n_ch:
            notes.append(f"first {recipe.channels} of {n_ch} leads ({', '.join(record.channels[:recipe.channels])})")
    else:
        idx = list(range(n_ch))
    if not recipe.start * record.fs < n:  # compared before rounding: 1e308 s has no whole sample number
        raise InputError(f"start {recipe.start:g} s is past the end of the record ({n / record.fs:g} s)")
    s0 = int(round(recipe.start * record.fs))
    if s0 >= n:
        raise InputError(f"start {recipe.start:g} s is past the end of the record ({n / record.fs:g} s)")
    length = recipe.size[0] if recipe.size is not None else None
    if recipe.fs is None and length is not None and n - s0 != length:
        raise InputError(
            f"the model does not record its sampling rate and the record is not one {length}-sample window "
            f"({n - s0} samples at {record.fs:g} Hz from {recipe.start:g} s): give the rate the model's samples "
            f"are at with --fs HZ (the record is resampled to it)")
    ratio = record.fs / recipe.fs if recipe.fs is not None else 1.0
    span = int(round(length * ratio)) if length is not None else n - s0
    if span < 1:
        raise InputError(f"the model's window of {length} samples at {recipe.fs:g} Hz is shorter than one sample of "
                         f"the record at {record.fs:g} Hz (is --fs the model's rate?)")
    if s0 + span > n:
        raise InputError(
            f"the window of {span / record.fs:g} s from {recipe.start:g} s runs past the end of the record "
            f"({n / record.fs:g} s); choose an earlier --start"
        )
    x = values[idx, s0 : s0 + span]
    _refuse_missing(x, [record.channels[i] for i in idx], s0 / record.fs, (s0 + span) / record.fs)
    x = _to_model_units(x, record, idx, recipe, notes)
    out_len = length if length is not None else max(1, int(round(span / ratio)))
    if out_len != span:
        x = resample_grid(x, (out_len,))
        notes.append(f"resampled from {record.fs:g} Hz to {recipe.fs:g} Hz")
    if s0 or span != n:
        notes.append(f"window {s0 / record.fs:g}..{(s0 + span) / record.fs:g} s")
    x = _intensity(x, record, recipe, notes)
    x = _standardise(x, recipe, notes)
    geometry = Geometry("signal", (n,), None, (span,), ((0, 0),), (int(x.shape[-1]),), tuple(idx), n_ch, (s0, s0 + span),
                        float(record.fs), float(recipe.fs) if recipe.fs is not None else float(record.fs))
    return Prepared(x[None].contiguous(), geometry, recipe, tuple(notes))


