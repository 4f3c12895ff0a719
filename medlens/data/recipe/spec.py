"""The recipe: how a file becomes a model input, declared as plain data (see the package docstring)."""


from __future__ import annotations

import dataclasses
import json
import math
import os
import pathlib
from dataclasses import dataclass
from typing import Any, Sequence, Union

from medlens.data.formats.common import PathLike, Volume
from medlens.data.formats.signals import Signal
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
    units : tuple of str, optional
        Signals: the physical unit of each lead the model was trained on ("mV"); a record's lead
        in another unit of the same kind is converted ("uV" -> "mV"), one of another kind
        ("mmHg") is refused.
    start : float
        Signals: start of the window in seconds from the start of the record.
    slice : int, optional
        Volumes given to a 2-D model: the slice the model sees, along a NIfTI volume's
        superior-inferior axis (its axial slices) or a DICOM series' slice axis. Without it
        such an input is refused (the user names the slice; nothing is picked silently).
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
    units: tuple[str, ...] | None = None
    start: float = 0.0
    slice: int | None = None

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
        if self.slice is not None and (isinstance(self.slice, bool) or int(self.slice) != self.slice or self.slice < 0):
            raise InputError(f"--slice must be a slice index >= 0, got {self.slice}")

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
        for key in ("leads", "units"):
            if data.get(key) is not None:
                names = data[key]
                kw[key] = (names,) if isinstance(names, str) else tuple(str(v) for v in names)
        for key, kind in (("channels", int), ("fs", float), ("start", float), ("slice", int)):
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


