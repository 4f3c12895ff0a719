"""The scan as it came against the training data as it came: native facts that no distance on the
model's grid can see.

A 1024 x 1024 radiograph shrunk 37-fold to a 28 x 28 model may land close to the training data
on the model's grid, yet the model never saw such a scan: it saw 28 x 28 pictures. This module
compares what :attr:`medlens.data.cases.Case.reading` says of a scan (native shape, modality,
or for a file that names none, CT when its values are Hounsfield units, photometric
interpretation, a signal's rate) with the model's
:class:`~medlens.data.kinds.InputFacts`, and returns the reasons a scan is unlike the training
data and the warnings a report shows above its finding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from medlens.data.kinds import InputFacts, modality_group, resolution_factor

__all__ = ["DOWNSAMPLED_AT", "NATIVE_SIZE_RATIO", "NativeCheck", "native_check"]

#: A scan the model sees at this fraction of its native resolution or less gets the
#: ``downsampled`` warning (a quarter, as the issue asks).
DOWNSAMPLED_AT = 4.0

#: A scan whose native linear size differs from the training scans' by this factor or more (either
#: way) is unlike them: the model never saw scans sampled like it.
NATIVE_SIZE_RATIO = 2.0

_COLOUR = ("RGB", "YBR", "PALETTE")


@dataclass(frozen=True)
class NativeCheck:
    """Reasons the native scan is unlike the training data (each a sentence), and warnings
    ``{code, message}`` (codes ``downsampled``, ``slice_geometry`` and ``modality``)."""

    reasons: list[str] = field(default_factory=list)
    warnings: list[dict[str, str]] = field(default_factory=list)


def _shape_words(shape: Any) -> str:
    return " x ".join(str(int(s)) for s in shape)


def _size_reasons(native: list[int], facts: InputFacts) -> list[str]:
    """Why ``native`` is unlike the training scans' sizes: :data:`NATIVE_SIZE_RATIO` times finer than
    the smallest of them or coarser than the largest (all of them had ``facts.shape`` when the file
    records no range)."""
    smallest = facts.smallest if facts.smallest and len(facts.smallest) == len(native) else facts.shape
    largest = facts.largest if facts.largest and len(facts.largest) == len(native) else facts.shape
    which = "" if smallest == largest else "largest "
    ratio = resolution_factor(native, largest)
    if ratio < NATIVE_SIZE_RATIO:
        which = "" if smallest == largest else "smallest "
        ratio = resolution_factor(native, smallest)
        if ratio > 1.0 / NATIVE_SIZE_RATIO:
            return []
    how = f"{ratio:.1f} times" if ratio >= 1 else f"1/{1 / ratio:.1f} of"
    bound = largest if ratio >= 1 else smallest
    return [f"its native size ({_shape_words(native)}) is {how} the {which}training scans' ({_shape_words(bound)})"]


def native_check(reading: dict[str, Any] | None, facts: InputFacts | None) -> NativeCheck:
    """Compare a case's native facts (``reading``) with the model's training facts (``facts``).

    Either may be missing (a data-set case is on the model's grid already; an older model file
    or TorchScript records no facts): what cannot be compared is not judged.
    """
    reading = dict(reading or {})
    reasons: list[str] = []
    warnings: list[dict[str, str]] = []
    native, model = reading.get("native_shape"), reading.get("model_shape")
    if native and model:
        native = list(native)
        if reading.get("slice") is not None and len(native) == len(model) + 1:  # a volume's slice: its in-plane axes
            axis = int(reading.get("slice_axis", 0))
            native = native[:axis] + native[axis + 1:]
        native = native[-len(model):]
        if reading.get("kind") == "signal" and reading.get("sampling_rate"):
            rates = reading["sampling_rate"]
            factor = float(rates["record_hz"]) / float(rates["model_hz"]) if rates.get("model_hz") else 1.0
            seen = f"{rates['record_hz']:g} Hz resampled to {rates['model_hz']:g} Hz"
        else:
            factor = resolution_factor(native, model)
            seen = f"{_shape_words(native)} shrunk to {_shape_words(model)}"
        if factor >= DOWNSAMPLED_AT:
            warnings.append({"code": "downsampled", "message": (
                f"The model saw this scan at 1/{factor:.0f} of its native resolution ({seen}): detail finer "
                f"than {factor:.0f} native pixels was lost before the model looked.")})
    # a missing slice, uneven spacing, gantry tilt: the grid the model and the maps use is not the patient's
    warnings += [{"code": "slice_geometry", "message": text} for text in reading.get("geometry_warnings") or ()]
    if facts is None:
        return NativeCheck(reasons, warnings)
    if native and facts.shape and facts.kind in ("image", "volume") and len(facts.shape) == len(native):
        reasons.extend(_size_reasons(native, facts))
    modality = str(reading.get("modality") or reading.get("modality_from_values") or "").upper()
    if modality and facts.modality and modality_group(modality) not in {modality_group(m) for m in facts.modality}:
        this = (f"This scan is {modality}" if reading.get("modality") else
                f"This file names no modality, but its values look like {modality} (Hounsfield units, air at "
                "about -1000)")
        message = f"{this}; the model was trained on {'/'.join(facts.modality)} ({modality_group(facts.modality[0])})."
        warnings.append({"code": "modality", "message": message})
        guessed = "" if reading.get("modality") else ", by its values"
        reasons.append(f"its modality ({modality}{guessed}) is not the training data's ({'/'.join(facts.modality)})")
    # bit depth alone is not a reason: a 16-bit copy of a training image reaches the model as the
    # same values once the recipe has scaled it; values the recipe does not bring into the training
    # range are the distances' to judge
    photometric = str(reading.get("photometric") or "").upper()
    if photometric.startswith(_COLOUR) and facts.channels == "grey":
        reasons.append(f"it is a colour image ({photometric}), the training scans grey")
    return NativeCheck(reasons, warnings)
