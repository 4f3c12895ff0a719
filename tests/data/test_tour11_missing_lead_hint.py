"""MIT-BIH 100 as ``100_3chan`` (leads I, II, III) given to a model of leads MLII, V5 was refused with
"lead 'MLII' is not in the record; it has I, II, III" and no word of ``--leads``, which the explain, predict,
evaluate and audit commands take. Both places that refuse (a record through the recipe, a folder's windows)
now say it, from one function."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlens.data.formats.signals import Signal
from medlens.data.recipe import Recipe, prepare
from medlens.data.records import beat_windows
from medlens.errors import InputError

SIGNAL = Signal(torch.from_numpy(np.random.default_rng(0).standard_normal((3, 1000)).astype(np.float32)), 360.0,
                ("I", "II", "III"), ("mV",) * 3)


def test_the_recipe_names_the_way_out():
    with pytest.raises(InputError, match=r"lead 'MLII' is not in the record; it has I, II, III: .* with --leads"):
        prepare(SIGNAL, Recipe(fs=360.0, leads=("MLII", "V5"), size=(252,)))


def test_the_windows_name_the_way_out():
    with pytest.raises(InputError, match=r"lead 'MLII' is not in the record; it has I, II, III: .* with --leads"):
        beat_windows(SIGNAL, "N:normal", leads=("MLII", "V5"))
