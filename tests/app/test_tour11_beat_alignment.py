"""``predictions.csv`` names each beat by its annotation's time (``case-0000@1595.636s``), while a beat
model's windows start ``--before`` seconds earlier: ``explain --start 1595.636`` on MIT-BIH 100 explained a
window shifted by 0.25 s, one the model never saw, and said only that the record is unlike the training
data. explain now warns and gives the start of the nearest beat's window."""

from __future__ import annotations

import json

import pytest

from medlens.app.explain_file import explain_file
from medlens.app.inputs import RecipeOptions
from tests.app.kinds_data import write_beat_model_and_record

pytest.importorskip("wfdb")

@pytest.fixture(scope="module")
def beat_model_and_record(tmp_path_factory):
    return write_beat_model_and_record(tmp_path_factory.mktemp("beats"))


def _warnings(model, record, start, out):
    explain_file(model=str(model), input=str(record), out=str(out), recipe=RecipeOptions(start=start))
    return {w["code"]: w["message"] for w in json.loads((out / "summary.json").read_text())["warnings"]}


def test_a_start_at_the_beat_itself_is_warned_with_the_window_start(beat_model_and_record, tmp_path):
    model, record, beats = beat_model_and_record
    sample, symbol = beats[3]
    found = _warnings(model, record, sample / 250, tmp_path / "o")
    assert f"the nearest {symbol!r} beat is at {sample / 250:.3f} s: --start {sample / 250 - 0.25:.3f}" \
           in found["beat_alignment"]


def test_the_window_the_model_saw_is_not_warned(beat_model_and_record, tmp_path):
    model, record, beats = beat_model_and_record
    assert "beat_alignment" not in _warnings(model, record, beats[3][0] / 250 - 0.25, tmp_path / "o")
