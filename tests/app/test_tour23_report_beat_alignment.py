"""``medlens report`` on a record with a beat model said nothing when its window started off the
beat alignment the model was trained on (``explain`` warned, with the start that fits): a report of
``--start 1595.636`` (a beat's own time, as predictions.csv names it) showed a window the model never
saw. The report now carries the same ``beat_alignment`` warning in case.json and report.html."""

from __future__ import annotations

import json

import pytest

from medlens.app.inputs import RecipeOptions
from medlens.app.report_case import report_case
from tests.app.kinds_data import write_beat_model_and_record

pytest.importorskip("wfdb")

@pytest.fixture(scope="module")
def beat_model_and_record(tmp_path_factory):
    return write_beat_model_and_record(tmp_path_factory.mktemp("beats"))


def _report(model, record, start, out):
    report_case(model=str(model), input=str(record), out=str(out), recipe=RecipeOptions(start=start),
                methods=["gradient"])
    summary = json.loads((out / "case.json").read_text())
    return {w["code"]: w["message"] for w in summary["warnings"]}, (out / "report.html").read_text()


def test_a_report_at_the_beat_itself_warns_with_the_window_start(beat_model_and_record, tmp_path):
    model, record, beats = beat_model_and_record
    sample, _ = beats[3]
    found, html = _report(model, record, sample / 250, tmp_path / "o")
    assert f"--start {sample / 250 - 0.25:.3f}" in found["beat_alignment"]
    assert f"--start {sample / 250 - 0.25:.3f}" in html


def test_a_report_of_the_window_the_model_saw_is_not_warned(beat_model_and_record, tmp_path):
    model, record, beats = beat_model_and_record
    found, _ = _report(model, record, beats[3][0] / 250 - 0.25, tmp_path / "o")
    assert "beat_alignment" not in found
