"""``medlens report`` on a record with a beat model said nothing when its window started off the
beat alignment the model was trained on (``explain`` warned, with the start that fits): a report of
``--start 1595.636`` (a beat's own time, as predictions.csv names it) showed a window the model never
saw. The report now carries the same ``beat_alignment`` warning in case.json and report.html."""

from __future__ import annotations

import json

import pytest

from medlens.app.inputs import RecipeOptions
from medlens.app.report_case import report_case
from medlens.models import save_model
from medlens.models.attention_rnn import AttentionRNN
from tests.app.kinds_data import write_beats_record

pytest.importorskip("wfdb")

WINDOWS = {"fs": 250.0, "before": 0.25, "after": 0.45, "leads": ["MLII", "V5"], "normalize": "none",
           "kind": "beats", "annotation_labels": {"N": "normal", "V": "ventricular"}, "step": None}


@pytest.fixture(scope="module")
def beat_model_and_record(tmp_path_factory):
    folder = tmp_path_factory.mktemp("beats")
    beats = write_beats_record(folder, seconds=8.0)
    net = AttentionRNN(2, in_channels=2, hidden_size=6, attention_size=5, front_channels=4).eval()
    recipe = {"fs": 250.0, "leads": ["MLII", "V5"], "units": ["mV", "mV"], "size": [175]}
    model = save_model(net, folder / "beats.pt", {"class_names": ["normal", "ventricular"], "input_shape": [2, 175],
                                                  "windows": WINDOWS, "recipe": recipe})
    return model, folder / "rec", beats


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
