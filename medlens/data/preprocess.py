"""Preprocessing recipes that travel with a model, and the inverse geometry that maps a map back.

A :class:`Recipe` declares, as plain data, how a file becomes a model input:

* intensity, in this order: CT windows in Hounsfield units (one channel per window, stacked the
  way Lee et al.'s intracranial haemorrhage system feeds brain, subdural and bone windows: Lee
  et al., "An explainable deep-learning algorithm for the detection of acute intracranial
  haemorrhage from small datasets", Nature Biomedical Engineering 3, 173-182, 2019), percentile
  clipping, then one normalisation (``"minmax"``, ``"zscore"``, ``"unit"`` = divide by the
  file's largest storable value, e.g. 255 for 8-bit pictures, or ``"none"``), then optional
  per-channel ``mean``/``std`` (ImageNet-style models);
* channels: colour to grey (ITU-R BT.601 luma) or grey repeated to the model's channel count;
* geometry: the middle slice of a volume for a 2-D model, resampling to a voxel ``spacing`` (mm),
  then ``size`` reached by resizing or by centred cropping/padding;
* signals: lead selection by name, a ``start`` time in seconds, resampling to the model's rate
  ``fs`` and a window of ``length`` samples.

:func:`prepare` applies a recipe to a :class:`~medlens.data.common.Volume` or
:class:`~medlens.data.signals.Signal` and returns the model input with a :class:`Geometry`;
:func:`invert` maps an attribution on the model's grid back onto the record's own grid (image,
volume or signal), so that ``attribution.npy`` has the original's shape. Pure tensor transforms:
nothing here knows a model. The recipe is stored in the medlens model file's metadata
(``meta["recipe"]``, :meth:`Recipe.to_dict`) and read back with :meth:`Recipe.from_dict`; for a
user's own model it is a small JSON or YAML file (:meth:`Recipe.from_file`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
from dataclasses import dataclass, field
from typing import Any, Sequence, Union

import torch
import torch.nn.functional as F

from medlens.data.common import PathLike, Volume
from medlens.data.signals import Signal
from medlens.errors import FileFormatError, InputError

Record = Union[Volume, Signal]

RECIPE_VERSION = 1
NORMALISATIONS = ("none", "minmax", "zscore", "unit")
FITS = ("resize", "crop_or_pad")

#: Named CT windows ``(centre, width)`` in HU (brain, subdural and bone as in Lee et al. 2019).
WINDOW_PRESETS: dict[str, tuple[float, float]] = {
    "brain": (40.0, 80.0),
    "subdural": (80.0, 200.0),
    "bone": (600.0, 2800.0),
    "stroke": (32.0, 8.0),
    "soft-tissue": (40.0, 400.0),
    "lung": (-600.0, 1500.0),
    "liver": (60.0, 160.0),
}

_LUMA = (0.299, 0.587, 0.114)


def _floats(value: Any, name: str, n: int | None = None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        out = tuple(float(v) for v in (value if isinstance(value, (list, tuple)) else [value]))
    except (TypeError, ValueError):
        raise InputError(f"recipe {name} must be numbers, got {value!r}") from None
    if n is not None and len(out) != n:
        raise InputError(f"recipe {name} must have {n} numbers, got {value!r}")
    if not all(math.isfinite(v) for v in out):
        raise InputError(f"recipe {name} must be finite, got {value!r}")
    return out


def parse_window(text: str) -> tuple[float, float]:
    """``"brain"`` or ``"40,80"`` (centre, width in HU) -> ``(40.0, 80.0)``."""
    key = text.strip().lower()
    if key in WINDOW_PRESETS:
        return WINDOW_PRESETS[key]
    parts = key.replace(":", ",").split(",")
    window = _floats(parts, f"window {text!r}", 2) if len(parts) == 2 else None
    if window is None or window[1] <= 0:
        raise InputError(
            f"window {text!r} must be CENTRE,WIDTH in HU with a positive width, or one of "
            f"{', '.join(WINDOW_PRESETS)}"
        )
    return window  # type: ignore[return-value]


@dataclass(frozen=True)
class Recipe:
    """How a file becomes a model input; plain data, stored with the model.

    Attributes
    ----------
    windows : tuple of (float, float)
        CT windows ``(centre, width)`` in HU, one output channel each:
        ``clip((x - (centre - width / 2)) / width, 0, 1)``. Only for images in HU (CT DICOM,
        NIfTI, arrays).
    clip_percentiles : (float, float), optional
        Clip to these percentiles of the image (e.g. ``(0.5, 99.5)``) before normalising.
    normalize : {"none", "minmax", "zscore", "unit"}
        ``"minmax"``: to ``[0, 1]`` by the image's range; ``"zscore"``: zero mean, unit standard
        deviation (per channel for signals); ``"unit"``: divided by the file's largest storable
        value (``MaxValue``: 255 for 8 bit, 65535 for 16 bit; min-max for float data).
    mean, std : tuple of float, optional
        Per-channel ``(x - mean) / std`` applied last (one value, or one per channel).
    channels : int, optional
        Channels the model takes: colour becomes grey for 1, grey is repeated for 3.
    size : tuple of int, optional
        The model's spatial input size, ``(H, W)``, ``(D, H, W)`` or ``(L,)`` for signals.
    spacing : tuple of float, optional
        Resample to this voxel size in mm (one per spatial axis) before reaching ``size``.
    fit : {"resize", "crop_or_pad"}
        How ``size`` is reached: interpolation, or centred cropping/zero padding.
    fs : float, optional
        Signals: the model's sampling rate in Hz; the record is resampled to it.
    leads : tuple of str, optional
        Signals: the channels (lead names) the model takes, in order.
    start : float
        Signals: start of the window in seconds from the start of the record.
    """

    windows: tuple[tuple[float, float], ...] = ()
    clip_percentiles: tuple[float, float] | None = None
    normalize: str = "none"
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    channels: int | None = None
    size: tuple[int, ...] | None = None
    spacing: tuple[float, ...] | None = None
    fit: str = "resize"
    fs: float | None = None
    leads: tuple[str, ...] | None = None
    start: float = 0.0

    def __post_init__(self) -> None:
        if self.normalize not in NORMALISATIONS:
            raise InputError(f"recipe normalize must be one of {', '.join(NORMALISATIONS)}, got {self.normalize!r}")
        if self.fit not in FITS:
            raise InputError(f"recipe fit must be one of {', '.join(FITS)}, got {self.fit!r}")
        for c, w in self.windows:
            if not (math.isfinite(c) and math.isfinite(w)) or w <= 0:
                raise InputError(f"recipe window ({c:g}, {w:g}) needs a positive finite width")
        if self.clip_percentiles is not None:
            lo, hi = self.clip_percentiles
            if not 0 <= lo < hi <= 100:
                raise InputError(f"recipe clip_percentiles must satisfy 0 <= low < high <= 100, got {self.clip_percentiles}")
        if self.size is not None and (not self.size or any(int(s) < 1 for s in self.size)):
            raise InputError(f"recipe size must be positive whole numbers, got {self.size}")
        if self.spacing is not None and any(s <= 0 for s in self.spacing):
            raise InputError(f"recipe spacing must be positive, got {self.spacing}")
        if self.std is not None and any(s == 0 for s in self.std):
            raise InputError("recipe std must not be 0")
        if self.channels is not None and self.channels < 1:
            raise InputError(f"recipe channels must be at least 1, got {self.channels}")
        if self.windows and self.channels is not None and self.channels != len(self.windows):
            raise InputError(
                f"recipe has {len(self.windows)} windows (one channel each) but says channels={self.channels}"
            )
        if self.fs is not None and not self.fs > 0:
            raise InputError(f"recipe fs must be positive, got {self.fs}")
        if not (math.isfinite(self.start) and self.start >= 0):
            raise InputError(f"recipe start must be a time >= 0 in seconds, got {self.start}")

    # -- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Plain data (lists, numbers, strings, ``None``) for JSON and the model file."""
        out: dict[str, Any] = {"version": RECIPE_VERSION}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [list(v) if isinstance(v, tuple) else v for v in value]
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Recipe":
        """Inverse of :meth:`to_dict`; unknown keys are an error (a typo must not pass silently)."""
        if not isinstance(data, dict):
            raise InputError(f"a recipe is a mapping of settings, got {type(data).__name__}")
        data = dict(data)
        version = data.pop("version", RECIPE_VERSION)
        if not isinstance(version, int) or version > RECIPE_VERSION:
            raise InputError(f"recipe version {version!r} is newer than this medlens reads ({RECIPE_VERSION})")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise InputError(f"unknown recipe settings {', '.join(unknown)}; known: {', '.join(sorted(names))}")
        kw: dict[str, Any] = {}
        if "windows" in data and data["windows"] is not None:
            wins = data["windows"]
            kw["windows"] = tuple(
                parse_window(w) if isinstance(w, str) else _floats(w, "window", 2) for w in wins
            )
        for key in ("clip_percentiles",):
            if data.get(key) is not None:
                kw[key] = _floats(data[key], key, 2)
        for key in ("mean", "std", "spacing"):
            if data.get(key) is not None:
                kw[key] = _floats(data[key], key)
        if data.get("size") is not None:
            size = data["size"] if isinstance(data["size"], (list, tuple)) else [data["size"]]
            if not all(isinstance(s, int) or (isinstance(s, float) and s.is_integer()) for s in size):
                raise InputError(f"recipe size must be whole numbers, got {data['size']!r}")
            kw["size"] = tuple(int(s) for s in size)
        if data.get("leads") is not None:
            leads = data["leads"]
            kw["leads"] = (leads,) if isinstance(leads, str) else tuple(str(v) for v in leads)
        for key, kind in (("channels", int), ("fs", float), ("start", float)):
            if data.get(key) is not None:
                try:
                    kw[key] = kind(data[key])
                except (TypeError, ValueError):
                    raise InputError(f"recipe {key} must be a number, got {data[key]!r}") from None
        for key in ("normalize", "fit"):
            if data.get(key) is not None:
                kw[key] = str(data[key])
        return cls(**kw)

    @classmethod
    def from_file(cls, path: PathLike) -> "Recipe":
        """Read a recipe from a JSON or YAML file (the keys of :meth:`to_dict`)."""
        p = pathlib.Path(os.fspath(path)).expanduser()
        if not p.is_file():
            raise FileFormatError(f"recipe file {p} not found")
        text = p.read_text(encoding="utf-8")
        try:
            if p.suffix.lower() in (".yaml", ".yml"):
                import yaml

                data = yaml.safe_load(text)
            else:
                data = json.loads(text)
        except Exception as exc:  # json.JSONDecodeError, yaml.YAMLError
            raise FileFormatError(f"recipe file {p} is not valid {'YAML' if p.suffix.lower() in ('.yaml', '.yml') else 'JSON'}: {' '.join(str(exc).split())}") from exc
        return cls.from_dict(data if data is not None else {})

    def replace(self, **changes: Any) -> "Recipe":
        """A copy with ``changes`` (``None`` values are ignored: a flag not given changes nothing)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    @property
    def out_channels(self) -> int | None:
        """Channels of the model input this recipe produces, when it fixes them."""
        return len(self.windows) if self.windows else self.channels


def recipe_for_shape(input_shape: Sequence[int] | None, normalize: str = "minmax") -> Recipe:
    """The recipe of a model file that records only its input shape ``(C, *spatial)``.

    Older medlens model files and npz-trained models say nothing else; min-max scaling to
    ``[0, 1]`` and resizing to the model's size is what medlens did for them before recipes.
    """
    if input_shape is None:
        return Recipe()
    return Recipe(normalize=normalize, channels=int(input_shape[0]), size=tuple(int(s) for s in input_shape[1:]))


# -- geometry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Geometry:
    """What :func:`prepare` did to the grid, enough to map a model-grid map back.

    Attributes
    ----------
    kind : {"image", "signal"}
    original_shape : tuple of int
        Spatial shape of the record (``(H, W)``, ``(D, H, W)`` or ``(L,)``).
    slice_index : int or None
        The slice along axis 0 a 2-D model saw of a volume.
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

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))


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


_MODES = {1: "linear", 2: "bilinear", 3: "trilinear"}
_POOLS = {1: F.adaptive_avg_pool1d, 2: F.adaptive_avg_pool2d, 3: F.adaptive_avg_pool3d}


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
    if nd not in _MODES:
        raise InputError(f"cannot resample a grid with {nd} spatial axes")
    up = tuple(max(a, b) for a, b in zip(src, shape, strict=True))
    y = x[None].float()
    if up != src:
        y = F.interpolate(y, size=up, mode=_MODES[nd], align_corners=False)
    if up != shape:
        y = _POOLS[nd](y, shape)
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
    """Apply ``recipe`` to a record read by :func:`medlens.data.read.read`.

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
        raise InputError(f"{record.format or 'the input'} image holds NaN or infinite values")
    x = _intensity(x, record, recipe, notes)
    slice_index = None
    want_rank = len(recipe.size) if recipe.size is not None else (len(recipe.spacing) if recipe.spacing else None)
    if want_rank is not None and len(original) == want_rank + 1 and want_rank >= 1:
        slice_index = original[0] // 2
        x, spacing = x[:, slice_index], spacing[1:]
        notes.append(f"middle slice {slice_index} of {original[0]} along the first axis")
    elif want_rank is not None and len(original) != want_rank:
        raise InputError(
            f"the input is {len(original)}-D of shape {original} but the recipe/model expects {want_rank}-D inputs"
        )
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
    geometry = Geometry("image", original, slice_index, resampled, pads, tuple(int(s) for s in x.shape[1:]))
    return Prepared(x[None].contiguous(), geometry, recipe, tuple(notes))


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


def _prepare_signal(record: Signal, recipe: Recipe) -> Prepared:
    notes: list[str] = []
    values = record.values.float()
    n_ch, n = int(values.shape[0]), int(values.shape[1])
    if recipe.windows:
        _check_hu(record)
    if recipe.leads is not None:
        lower = [c.lower() for c in record.channels]
        idx = []
        for lead in recipe.leads:
            if lead.lower() not in lower:
                raise InputError(f"lead {lead!r} is not in the record; it has {', '.join(record.channels)}")
            idx.append(lower.index(lead.lower()))
        notes.append(f"leads {', '.join(record.channels[i] for i in idx)}")
    elif recipe.channels is not None:
        if recipe.channels > n_ch:
            raise InputError(f"the model takes {recipe.channels} leads but the record has {n_ch} ({', '.join(record.channels)})")
        idx = list(range(recipe.channels))
        if recipe.channels < n_ch:
            notes.append(f"first {recipe.channels} of {n_ch} leads ({', '.join(record.channels[:recipe.channels])})")
    else:
        idx = list(range(n_ch))
    s0 = int(round(recipe.start * record.fs))
    if s0 >= n:
        raise InputError(f"start {recipe.start:g} s is past the end of the record ({n / record.fs:g} s)")
    ratio = record.fs / recipe.fs if recipe.fs is not None else 1.0
    length = recipe.size[0] if recipe.size is not None else None
    if recipe.size is not None and len(recipe.size) != 1:
        raise InputError(f"the model expects {len(recipe.size)}-D inputs but the input is a signal")
    span = int(round(length * ratio)) if length is not None else n - s0
    if s0 + span > n:
        raise InputError(
            f"the window of {span / record.fs:g} s from {recipe.start:g} s runs past the end of the record "
            f"({n / record.fs:g} s); choose an earlier --start"
        )
    x = values[idx, s0 : s0 + span]
    out_len = length if length is not None else max(1, int(round(span / ratio)))
    if out_len != span:
        x = resample_grid(x, (out_len,))
        notes.append(f"resampled from {record.fs:g} Hz to {recipe.fs:g} Hz")
    if s0 or span != n:
        notes.append(f"window {s0 / record.fs:g}..{(s0 + span) / record.fs:g} s")
    x = _intensity(x, record, recipe, notes)
    x = _standardise(x, recipe, notes)
    geometry = Geometry("signal", (n,), None, (span,), ((0, 0),), (int(x.shape[-1]),), tuple(idx), n_ch, (s0, s0 + span))
    return Prepared(x[None].contiguous(), geometry, recipe, tuple(notes))


def mask_on_model_grid(geometry: Geometry, mask: torch.Tensor) -> torch.Tensor:
    """A mask on the record's own grid (a segmentation of the scan) carried onto the model's grid
    the way :func:`prepare` carried the image: the same slice, the same resampling and the same
    crop or pad; a model-grid element belongs to the mask when at least half of it is covered
    (a finding smaller than that keeps the elements it covers most).

    Raises
    ------
    InputError
        ``mask`` is not on the record's grid, or the geometry is a signal's.
    """
    if geometry.kind != "image":
        raise InputError("masks are carried onto the model grid for images and volumes only")
    m = torch.as_tensor(mask).detach().double().cpu()
    if tuple(m.shape) != tuple(geometry.original_shape):
        raise InputError(f"the mask has shape {tuple(m.shape)} but the scan is {tuple(geometry.original_shape)}")
    m = (m != 0).double()
    if geometry.slice_index is not None:
        m = m[geometry.slice_index]
    m = resample_grid(m[None], geometry.resampled_shape) if tuple(m.shape) != tuple(geometry.resampled_shape) else m[None]
    cover = _apply_pads(m, geometry.pads)[0]
    inside = cover >= 0.5
    if not bool(inside.any()) and float(cover.max()) > 0:  # a finding smaller than half a model element
        inside = cover == cover.max()  # keeps the elements it covers most
    return inside


def invert(geometry: Geometry, values: torch.Tensor) -> torch.Tensor:
    """Map an attribution on the model's grid back onto the record's own grid.

    Parameters
    ----------
    geometry : Geometry
        From :func:`prepare`.
    values : torch.Tensor
        ``(C, *model_spatial)`` (or ``(*model_spatial)``) on the model's input grid.

    Returns
    -------
    torch.Tensor
        Images and volumes: ``(*original_shape)``, channels summed (the relevance of each
        original pixel), zero outside what the model saw (cropped borders, other slices).
        Signals: ``(n_channels, L)`` on the original time axis, each selected lead's map on its
        own channel (a one-channel map, e.g. a CAM, on every selected lead), zero outside the
        window and on leads the model did not see.
    """
    v = values.detach().float().cpu()
    if v.ndim == len(geometry.model_shape):
        v = v[None]
    if tuple(v.shape[1:]) != tuple(geometry.model_shape):
        raise InputError(f"map of shape {tuple(v.shape)} is not on the model grid {geometry.model_shape}")
    if geometry.kind == "signal":
        s0, s1 = geometry.span
        back = resample_grid(v, (s1 - s0,))
        if back.shape[0] == 1 and len(geometry.channel_index) > 1:
            back = back.expand(len(geometry.channel_index), -1)
        out = torch.zeros(geometry.n_channels, geometry.original_shape[0])
        out[list(geometry.channel_index), s0:s1] = back
        return out
    v = v.sum(dim=0, keepdim=True)
    undo = tuple((-a, -b) for a, b in geometry.pads)
    v = _apply_pads(v, undo)
    plane = geometry.original_shape[1:] if geometry.slice_index is not None else geometry.original_shape
    v = resample_grid(v, plane)[0]
    if geometry.slice_index is not None:
        out = torch.zeros(geometry.original_shape)
        out[geometry.slice_index] = v
        return out
    return v
