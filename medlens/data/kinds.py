"""What kind of input a model takes, and what its training data looked like as it came.

A model file records :class:`InputFacts` in ``meta["input"]`` (:func:`facts_of_training_data`
at training time): the input kind (signal / image / volume / text), what the channels mean, the
native geometry of the training scans (shape, spacing where known, bit depth), the modality when
known (DICOM codes: CR, DX, CT, MR, US; ECG, EEG for signals) and a signal's sampling rate. An
older file without them gets what its input shape implies (:func:`facts_of_model`).

:func:`kind_of_record` and :func:`describe_record` say the same of a file as read, so that the
recipe (:func:`medlens.data.recipe.prepare`) refuses an input of another kind in one line naming
both, and the familiarity check can compare a scan's native facts with the training data's.
Nothing here knows a model: the facts are plain data.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

from medlens.errors import InputError

__all__ = ["KINDS", "InputFacts", "BUNDLED_FACTS", "describe_record", "facts_of_model", "facts_of_training_data",
           "kind_of_rank", "kind_of_record", "kind_words", "modality_group", "resolution_factor"]

KINDS = ("signal", "image", "volume", "text")

#: Spatial rank of each kind's inputs ``(C, *spatial)``.
_RANK_KIND = {1: "signal", 2: "image", 3: "volume"}

#: Modalities that acquire the same kind of picture: a CR and a DX radiograph are both projection
#: X-rays; anything else compares by its own code.
_GROUPS = {"CR": "X-ray", "DX": "X-ray", "DR": "X-ray", "RF": "X-ray", "XA": "X-ray", "MG": "mammography",
           "PT": "PET", "NM": "nuclear medicine"}


@dataclass(frozen=True)
class InputFacts:
    """What a model takes and what its training data were, as plain data (``meta["input"]``).

    Attributes
    ----------
    kind : {"signal", "image", "volume", "text"}
    channels : str
        What the channels mean ("grey", "RGB", "ECG lead", "CT windows 40/80 HU", ...).
    n_channels : int or None
    shape : tuple of int or None
        Native spatial shape of the training scans as they came (the most common one), before
        the recipe; for a data set stored on the model's grid, that grid.
    spacing : tuple of float or None
        Native pixel / voxel size in mm, where known.
    bit_depth : int or None
        Bits per stored value of the training scans (8 for MedMNIST), where known.
    modality : tuple of str
        DICOM modality codes (or ECG, EEG) of the training data; empty when unknown.
    fs : float or None
        Signals: the sampling rate in Hz the model's samples are at, when known.
    source : str
        Where the facts come from ("recorded at training", "derived from the input shape").
    smallest, largest : tuple of int or None
        Per axis, the smallest and the largest native size among the training scans, when they
        came in several sizes (a folder of scans from several scanners); ``None`` when all had
        ``shape`` (or for older files).
    """

    kind: str
    channels: str = ""
    n_channels: int | None = None
    shape: tuple[int, ...] | None = None
    spacing: tuple[float, ...] | None = None
    bit_depth: int | None = None
    modality: tuple[str, ...] = ()
    fs: float | None = None
    source: str = "recorded at training"
    smallest: tuple[int, ...] | None = None
    largest: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise InputError(f"input kind must be one of {', '.join(KINDS)}, got {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key in ("shape", "spacing", "modality", "smallest", "largest"):
            out[key] = None if out[key] is None else list(out[key])
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "InputFacts":
        known = {f for f in cls.__dataclass_fields__}
        given = {k: v for k, v in dict(data).items() if k in known}
        for key in ("shape", "spacing", "smallest", "largest"):
            if given.get(key) is not None:
                given[key] = tuple(given[key])
        given["modality"] = tuple(str(m).upper() for m in (given.get("modality") or ()))
        return cls(**given)

    def words(self) -> str:
        """``"images (chest X-ray CR/DX, 1 x 28 x 28)"``-like words for messages."""
        return kind_words(self.kind, self.n_channels, self.shape, self.modality, self.fs)


def kind_of_rank(spatial_rank: int) -> str:
    """The kind of an input with ``spatial_rank`` spatial axes (1 signal, 2 image, 3 volume)."""
    if spatial_rank not in _RANK_KIND:
        raise InputError(f"an input with {spatial_rank} spatial axes is none of {', '.join(KINDS)}")
    return _RANK_KIND[spatial_rank]


def kind_words(kind: str, n_channels: int | None = None, shape: Sequence[int] | None = None,
               modality: Sequence[str] = (), fs: float | None = None) -> str:
    """A kind in words with what is known: ``"signals (ECG, 1 lead x 140 samples)"``."""
    plural = {"signal": "signals", "image": "2-D images", "volume": "3-D volumes", "text": "text"}[kind]
    details = []
    if modality:
        details.append("/".join(modality))
    if shape:
        if kind == "signal":
            lead = f"{n_channels} lead{'s' if n_channels != 1 else ''} x " if n_channels else ""
            details.append(f"{lead}{shape[-1]} samples")
        else:
            details.append(" x ".join(str(int(s)) for s in ([n_channels] if n_channels else []) + list(shape)))
    if fs:
        details.append(f"{fs:g} Hz")
    return plural + (f" ({', '.join(details)})" if details else "")


def kind_of_record(record: Any) -> str:
    """``"signal"`` for a signal record, else ``"image"`` or ``"volume"`` by its spatial rank."""
    if hasattr(record, "fs") and hasattr(record, "values"):
        return "signal"
    return kind_of_rank(len(record.spatial_shape))


def describe_record(record: Any) -> str:
    """A record in words for a refusal: ``"a signal (WFDB, 2 leads at 360 Hz)"``."""
    kind = kind_of_record(record)
    fmt = getattr(record, "format", "") or "file"
    if kind == "signal":
        c, n = (int(v) for v in record.values.shape)
        return f"a signal ({fmt}, {c} lead{'s' if c != 1 else ''} x {n} samples at {float(record.fs):g} Hz)"
    shape = " x ".join(str(int(s)) for s in record.spatial_shape)
    modality = (getattr(record, "metadata", {}) or {}).get("Modality", "")
    what = {"image": "a 2-D image", "volume": "a 3-D volume"}[kind]
    channels = int(getattr(record, "channels", 1) or 1)
    colour = "" if channels == 1 else ", RGB" if channels == 3 else f", {channels} channels"
    return f"{what} ({fmt}{' ' + modality if modality else ''}{colour}, {shape})"


def modality_group(code: str) -> str:
    """The family a modality code belongs to (CR and DX: projection X-ray)."""
    code = code.strip().upper()
    return _GROUPS.get(code, code)


def resolution_factor(native_shape: Sequence[int], model_shape: Sequence[int]) -> float:
    """How many times coarser ``model_shape`` samples a scan than ``native_shape``: the geometric
    mean over the axes of native size / model size (below 1: the model's grid is finer)."""
    ratios = [float(n) / float(m) for n, m in zip(native_shape, model_shape, strict=True)]
    return math.exp(sum(math.log(max(r, 1e-12)) for r in ratios) / len(ratios)) if ratios else 1.0


@dataclass(frozen=True)
class _Bundled:
    channels: str
    modality: tuple[str, ...]
    bit_depth: int | None
    fs: float | None = None


#: What is known of the bundled data sets beyond their arrays (see their LICENSES.md): the
#: MedMNIST images are 8-bit greys resized to 28 x 28 (PneumoniaMNIST from paediatric chest
#: radiographs, BreastMNIST from breast ultrasound); ECG5000's beats were each interpolated to 140
#: samples, so no single sampling rate describes them.
BUNDLED_FACTS: dict[str, _Bundled] = {
    "pneumoniamnist": _Bundled("grey", ("CR", "DX"), 8),
    "breastmnist": _Bundled("grey", ("US",), 8),
    "ecg5000": _Bundled("ECG lead", ("ECG",), None),
}


def facts_of_training_data(inputs: Any, data: str, *, native: dict[str, Any] | None = None,
                           fs: float | None = None, windows: Sequence[tuple[float, float]] = ()) -> InputFacts:
    """The facts of a model trained on ``inputs`` ``(N, C, *spatial)`` from ``data``.

    ``native`` gives what the scans were before the recipe (``shape``, ``spacing``, ``bit_depth``,
    ``modality``, and ``smallest`` / ``largest`` when their sizes varied), for models trained on a folder of scans; a data set's inputs are their own
    native grid. ``fs`` is a signal's sampling rate; ``windows`` CT windows that made the channels.
    """
    name = str(data).lower()
    bundled = BUNDLED_FACTS.get(name)
    if not inputs.is_floating_point():
        return InputFacts("text", "token ids", None, (int(inputs.shape[-1]),), source="recorded at training")
    c, spatial = int(inputs.shape[1]), tuple(int(s) for s in inputs.shape[2:])
    kind = kind_of_rank(len(spatial))
    native = dict(native or {})
    if windows:
        channels = "CT windows " + ", ".join(f"{a:g}/{b:g} HU" for a, b in windows)
    elif bundled is not None:
        channels = bundled.channels
    else:
        channels = ("lead" if c == 1 else "leads") if kind == "signal" else ("grey" if c == 1 else "RGB" if c == 3 else f"{c} channels")
    modality = tuple(native.get("modality") or (bundled.modality if bundled else ()))
    shape = native.get("shape") or spatial
    return InputFacts(
        kind, channels, c, tuple(int(s) for s in shape),
        None if native.get("spacing") is None else tuple(float(s) for s in native["spacing"]),
        native.get("bit_depth") if native.get("bit_depth") is not None else (bundled.bit_depth if bundled else None),
        tuple(str(m).upper() for m in modality), fs if fs is not None else (bundled.fs if bundled else None),
        smallest=_shape_or_none(native.get("smallest")), largest=_shape_or_none(native.get("largest")),
    )


def _shape_or_none(shape: Sequence[int] | None) -> tuple[int, ...] | None:
    return None if shape is None else tuple(int(s) for s in shape)


def channel_names_of_model(meta: dict[str, Any]) -> list[str] | None:
    """The names of a model's input channels where its file records them (a records model's leads,
    ``meta["windows"]["leads"]``), else ``None``: what the familiarity check names a flat lead by."""
    return list((meta.get("windows") or {}).get("leads") or ()) or None


def facts_of_model(meta: dict[str, Any]) -> InputFacts | None:
    """The input facts of a loaded model: ``meta["input"]`` when recorded, else derived from the
    recorded input shape or the recipe's size (older files); ``None`` when nothing says."""
    if meta.get("input"):
        return InputFacts.from_dict(meta["input"])
    shape = meta.get("input_shape")
    recipe = meta.get("recipe") or {}
    if shape is not None and len(shape) >= 2:
        c, spatial = int(shape[0]), tuple(int(s) for s in shape[1:])
    elif recipe.get("size"):
        c, spatial = recipe.get("channels"), tuple(int(s) for s in recipe["size"])
    else:
        return None
    name = str(meta.get("data", "")).lower()
    bundled = BUNDLED_FACTS.get(name)
    return InputFacts(kind_of_rank(len(spatial)), bundled.channels if bundled else "", c, spatial, None,
                      bundled.bit_depth if bundled else None, bundled.modality if bundled else (),
                      recipe.get("fs") or (bundled.fs if bundled else None), source="derived from the input shape")
