"""Validation of method options shared by every method: counts, fractions, per-axis values."""

from __future__ import annotations

import math
from numbers import Real
from typing import Any, Sequence

import numpy as np

from medlens.errors import InputError


def per_dim(value: int | Sequence[int], n_dims: int, name: str, *, minimum: int = 1) -> tuple[int, ...]:
    """An option given as one int or one int per spatial dimension, as a tuple of ``n_dims`` ints.

    Raises
    ------
    InputError
        Not an int or a sequence of ``n_dims`` ints, or a value below ``minimum``.
    """
    if isinstance(value, bool):
        raise InputError(f"{name} must be an integer or one integer per spatial dimension, got {value!r}")
    if isinstance(value, int):
        values = (value,) * n_dims
    elif isinstance(value, (list, tuple)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        values = tuple(value)
        if len(values) != n_dims:
            raise InputError(
                f"{name} has {len(values)} value(s) but the input has {n_dims} spatial dimension(s)"
            )
    else:
        raise InputError(f"{name} must be an integer or one integer per spatial dimension, got {value!r}")
    if any(v < minimum for v in values):
        raise InputError(f"{name} must be at least {minimum}, got {value!r}")
    return values


def check_count(value: Any, name: str, *, minimum: int = 1) -> int:
    """A positive integer option (number of steps, samples, masks)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be an integer of at least {minimum}, got {value!r}")
    return value


def check_fraction(value: Any, name: str, *, low: float, high: float, open_low: bool = True) -> float:
    """A real option within ``(low, high]`` (or ``[low, high]`` when ``open_low`` is False)."""
    ok = isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = (v > low if open_low else v >= low) and v <= high
    if not ok:
        bracket = "(" if open_low else "["
        raise InputError(f"{name} must be a number in {bracket}{low}, {high}], got {value!r}")
    return float(value)


def check_switches(owner: str, given: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Every option whose default is ``True`` or ``False`` given as a bool: ``abs="yes"`` or
    ``abs="false"`` would otherwise be read by its truth (``"false"`` is true) and run silently.
    NumPy's bool counts as a bool."""
    for key, value in given.items():
        if isinstance(defaults.get(key), bool) and not _is_bool(value):
            raise InputError(f"{owner} option {key} must be True or False, got {value!r}")


def _is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def check_known(kind: str, name: str, given: Any, known: Sequence[str] | dict) -> None:
    """The one "no such option" check: every key of ``given`` must be one of ``known``.

    ``kind`` is what has the options ("method", "metric"); the error lists what it accepts.
    """
    unknown = sorted(set(given) - set(known))
    if unknown:
        listed = ", ".join(known) or "none"
        from medlens.errors import UnknownNameError

        raise UnknownNameError(f"{kind} {name!r} has no option {unknown[0]!r}; its options: {listed}")
