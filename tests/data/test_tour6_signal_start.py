"""A start time far past the end of a record is refused in one line, not an internal error.

Seen: ``medlens explain --model beats.pt --input mitdb/100 --start 1e308`` -> "internal error:
OverflowError: cannot convert float infinity to integer" (1e308 s x 360 Hz is infinite).
"""

from __future__ import annotations

import pytest
import torch

from medlens.data.formats.signals import Signal
from medlens.data.recipe import Recipe, prepare
from medlens.errors import InputError


@pytest.mark.parametrize("start", [1e308, 1e300, 11.0])
def test_a_start_past_the_end_is_named(start):
    record = Signal(torch.zeros(1, 1000), 100.0, ("II",), ("mV",))
    with pytest.raises(InputError, match=r"past the end of the record \(10 s\)"):
        prepare(record, Recipe(normalize="none", channels=1, size=(50,), fs=100.0, start=start))
