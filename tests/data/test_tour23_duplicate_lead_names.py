"""An EDF may label two signals alike ("EEG Fp1" twice): the windows cut from it took the first
signal of that name for both, so a model trained on it saw one channel twice and never the other,
silently. A name the record gives several signals is now taken in their order, in the windows of
``medlens train`` as in a record read through a model's recipe (explain, report)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlens.data.formats.signals import load_signal
from medlens.data.recipe import Recipe, prepare
from medlens.data.records import windows_from_folder

pyedflib = pytest.importorskip("pyedflib")

LABELS = ["EEG Fp1", "EEG Fp1", "EEG C3", "EEG O1"]


@pytest.fixture()
def record(tmp_path):
    path = tmp_path / "dup.edf"
    writer = pyedflib.EdfWriter(str(path), len(LABELS), file_type=pyedflib.FILETYPE_EDFPLUS)
    writer.setSignalHeaders([{"label": label, "dimension": "uV", "sample_frequency": 128, "physical_max": 500.0,
                              "physical_min": -500.0, "digital_max": 32767, "digital_min": -32768} for label in LABELS])
    t = np.arange(4 * 128) / 128
    writer.writeSamples([100 * np.sin(2 * np.pi * (3 + 4 * k) * t) for k in range(len(LABELS))])
    writer.close()
    return path


def test_windows_take_each_signal_of_a_shared_name(record):
    own = load_signal(record).values
    windows = windows_from_folder(record, windows="fixed", record_labels={"dup": "x"}, length=2.0)
    assert windows.leads == tuple(LABELS)
    assert torch.allclose(windows.inputs[0], own[:, :256], atol=1e-3)  # the second Fp1 is the file's second signal


def test_a_recipe_naming_the_name_twice_takes_both_signals(record):
    signal = load_signal(record)
    x = prepare(signal, Recipe(size=(256,), fs=128.0, leads=("EEG Fp1", "EEG Fp1"))).x
    assert not torch.allclose(x[0, 0], x[0, 1])
    assert torch.allclose(x[0], signal.values[:2, :256], atol=1e-3)
