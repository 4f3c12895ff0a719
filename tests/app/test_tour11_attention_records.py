"""``medlens train --windows beats`` trains an attention RNN by default, yet ``medlens attention`` on the
records it was trained on said "mitdb is a folder, expected a npz file": the attention of a beat model
could not be tested at all. It now cuts the windows as the model does (beat labels from the annotations)."""

from __future__ import annotations

import json

import pytest

from medlens.cli import main
from medlens.models import save_model
from medlens.models.attention_rnn import AttentionRNN
from tests.app.kinds_data import write_beats_record

pytest.importorskip("wfdb")


def _beat_model(tmp_path, seconds: float):
    """A folder with one beat-annotated record, and a tiny attention RNN saved as a beat model of it."""
    folder = tmp_path / "records"
    folder.mkdir()
    write_beats_record(folder, seconds=seconds)
    windows = {"fs": 250.0, "before": 0.25, "after": 0.45, "leads": ["MLII", "V5"], "normalize": "none",
               "kind": "beats", "annotation_labels": {"N": "normal", "V": "ventricular"}, "step": None}
    net = AttentionRNN(2, in_channels=2, hidden_size=6, attention_size=5, front_channels=4).eval()
    return folder, save_model(net, tmp_path / "beats.pt", {"class_names": ["normal", "ventricular"],
                                                           "input_shape": [2, 175], "windows": windows})


def test_attention_tests_a_beat_model_on_its_records(tmp_path, capsys):
    folder, model = _beat_model(tmp_path, seconds=12.0)
    out = tmp_path / "attention"
    assert main(["attention", "--model", str(model), "--data", str(folder), "--limit", "6", "--permutations", "2",
                 "--ig-steps", "2", "--examples", "1", "--out", str(out), "--quiet"]) == 0, capsys.readouterr().err
    found = json.loads((out / "attention.json").read_text())
    assert found["data"] == "1 record (14 beat windows)" and found["summary"]["n_sequences"] == 6
    assert found["summary"]["accuracy"] is not None  # labelled by the annotations
    assert "1 record (14 beat windows)" in (out / "report.html").read_text()  # named by count, not file name


def test_unlabelled_windows_still_get_example_figures():
    """Fixed windows given without --labels have no labels: attention drew no example at all."""
    from medlens.app.attention_section import pick_examples

    assert pick_examples(None, None, 2, count=5) == [0, 1]


def test_the_example_figures_name_the_leads(tmp_path, monkeypatch):
    """The example strips of a beat model's windows were drawn without the leads' names."""
    import medlens.app.attention_section as section

    folder, model = _beat_model(tmp_path, seconds=6.0)
    seen = {}
    monkeypatch.setattr(section, "add_attention_analysis", lambda *a, **k: seen.update(k) or {})
    assert main(["attention", "--model", str(model), "--data", str(folder), "--limit", "2", "--permutations", "1",
                 "--ig-steps", "0", "--examples", "1", "--out", str(tmp_path / "a"), "--quiet"]) == 0
    assert seen["channel_names"] == ["MLII", "V5"] and seen["fs"] == 250.0
