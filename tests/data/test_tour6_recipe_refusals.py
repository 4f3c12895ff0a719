"""Refusals of the recipe on real files: one line that says what is wrong with the input.

A start time far past the end of a record is refused in one line, not an internal error.

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


def test_nan_voxels_are_counted_in_the_refusal():
    """Seen on nibabel's resampled_anat_moved.nii (153 NaN voxels outside the field of view): the
    refusal said only "NIfTI image holds NaN or infinite values"."""
    from medlens.data.formats.common import Volume

    array = torch.zeros(4, 5, 6)
    array[0, 0, :3] = float("nan")
    array[1, 1, 1] = float("inf")
    volume = Volume(array, (1.0, 1.0, 1.0), {}, format="NIfTI")
    with pytest.raises(InputError, match=r"NIfTI image holds NaN or infinite values \(3 NaN and 1 infinite of 120; "):
        prepare(volume, Recipe(normalize="minmax", channels=1, size=(4, 5, 6)))
