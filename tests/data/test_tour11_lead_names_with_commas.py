"""WFDB's ``binformats`` record (wfdb-python's sample data) names its leads ``"sig 0, fmt 8"``: ``--leads``
split every name at its comma, so no lead of it could be chosen ("lead 'sig 0' is not in the record").
Semicolons now separate names that hold a comma."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medlens.app.explain_file import explain_file
from medlens.app.inputs import RecipeOptions
from medlens.data.recipe import Recipe
from medlens.data.records import parse_leads
from medlens.models import CNN, save_model

wfdb = pytest.importorskip("wfdb")


def test_semicolons_separate_lead_names_that_hold_commas():
    assert parse_leads("sig 0, fmt 8;sig 1, fmt 16") == ("sig 0, fmt 8", "sig 1, fmt 16")
    assert parse_leads("MLII, V5") == ("MLII", "V5")
    assert parse_leads(" ") is None and parse_leads(None) is None


def test_explain_takes_the_leads_of_a_binformats_like_record(tmp_path):
    t = np.arange(200 * 3) / 200
    signal = np.stack([np.sin(2 * np.pi * t), np.cos(2 * np.pi * t), t], 1)
    names = ["sig 0, fmt 8", "sig 1, fmt 16", "sig 2, fmt 61"]
    wfdb.wrsamp("binformats", fs=200, units=["mV"] * 3, sig_name=names, p_signal=signal, fmt=["16"] * 3,
                write_dir=str(tmp_path))
    model = save_model(CNN(1, 2, 2, widths=(4,), input_shape=(2, 100)).eval(), tmp_path / "m.pt",
                       {"input_shape": [2, 100], "class_names": ["a", "b"],
                        "recipe": Recipe(fs=200.0, leads=("MLII", "V5"), size=(100,))})
    explain_file(model=str(model), input=str(tmp_path / "binformats"), out=str(tmp_path / "out"),
                 recipe=RecipeOptions(leads="sig 1, fmt 16;sig 2, fmt 61", start=1.0))
    note = json.loads((tmp_path / "out" / "summary.json").read_text())["input_note"]
    assert note.startswith("leads sig 1, fmt 16, sig 2, fmt 61")
