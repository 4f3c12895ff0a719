"""Physical units of signal leads: which convert into which, and by what factor.

A model trained on ECG leads in mV given an EDF lead in uV must see millivolts, and a lead in
mmHg (a blood pressure) is not an ECG lead at any scale. Only units this module knows are judged;
an empty or unknown unit ("NU", "") is taken as it comes.
"""

from __future__ import annotations

__all__ = ["dimension", "unit_scale"]

#: unit (lower case) -> (dimension, factor to the dimension's base unit)
_UNITS: dict[str, tuple[str, float]] = {
    "v": ("voltage", 1.0), "mv": ("voltage", 1e-3), "uv": ("voltage", 1e-6), "\u00b5v": ("voltage", 1e-6),
    "\u03bcv": ("voltage", 1e-6), "nv": ("voltage", 1e-9),
    "mmhg": ("pressure", 1.0), "kpa": ("pressure", 7.500617), "cmh2o": ("pressure", 0.735559),
    "bpm": ("rate", 1.0), "/min": ("rate", 1.0),
    "degc": ("temperature", 1.0), "\u00b0c": ("temperature", 1.0),
}


def _known(unit: str) -> tuple[str, float] | None:
    return _UNITS.get(str(unit).strip().lower().replace(" ", ""))


def dimension(unit: str) -> str | None:
    """``"voltage"``, ``"pressure"``, ... for a known unit, else ``None``."""
    known = _known(unit)
    return None if known is None else known[0]


def unit_scale(source: str, target: str) -> float | None:
    """The factor that turns values in ``source`` into ``target`` (``unit_scale("uV", "mV") ==
    1e-3``); ``None`` when either unit is unknown or they measure different things."""
    a, b = _known(source), _known(target)
    if a is None or b is None or a[0] != b[0]:
        return None
    return a[1] / b[1]
