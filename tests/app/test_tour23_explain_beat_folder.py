"""``medlens explain --input FOLDER`` with a beat model explained each record's window at 0 s, a
window the model never saw (no beat where its windows put one). It now explains each annotated beat
the model knows, in record order, named as predictions.csv names them, ``--limit`` the first N."""

from __future__ import annotations

import csv
import json

import pytest

from medlens.app.explain_file import explain_file
from medlens.errors import InputError
from medlens.models import save_model
from medlens.models.attention_rnn import AttentionRNN
from tests.app.kinds_data import write_beats_record

wfdb = pytest.importorskip("wfdb")

WINDOWS = {"fs": 250.0, "before": 0.25, "after": 0.45, "leads": ["MLII", "V5"], "normalize": "none",
           "kind": "beats", "annotation_labels": {"N": "normal", "V": "ventricular"}, "step": None}


@pytest.fixture(scope="module")
def beat_model_and_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("beats")
    (folder / "records").mkdir()
    beats = write_beats_record(folder / "records", seconds=4.0)
    net = AttentionRNN(2, in_channels=2, hidden_size=6, attention_size=5, front_channels=4).eval()
    recipe = {"fs": 250.0, "leads": ["MLII", "V5"], "units": ["mV", "mV"], "size": [175]}
    model = save_model(net, folder / "beats.pt", {"class_names": ["normal", "ventricular"], "input_shape": [2, 175],
                                                  "windows": WINDOWS, "recipe": recipe})
    return model, folder / "records", beats


def test_a_folder_of_records_is_explained_beat_by_beat(beat_model_and_folder, tmp_path):
    model, folder, beats = beat_model_and_folder
    explain_file(model=str(model), input=str(folder), out=str(tmp_path / "o"), limit=3)
    with open(tmp_path / "o" / "summary.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["case"] for r in rows] == [f"case-0000@{s / 250:.3f}s" for s, _ in beats[:3]]
    assert all(r["status"] == "ok" and "beat_alignment" not in r["warnings"] for r in rows)
    first = json.loads((tmp_path / "o" / rows[0]["output"] / "summary.json").read_text())
    assert "beat_alignment" not in {w["code"] for w in first["warnings"]}


def test_a_folder_without_beats_is_refused_in_one_line(beat_model_and_folder, tmp_path):
    model, _, _ = beat_model_and_folder
    import numpy as np

    (tmp_path / "plain").mkdir()
    wfdb.wrsamp("bare", fs=250, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=np.zeros((1000, 2)) + 0.1,
                fmt=["16", "16"], write_dir=str(tmp_path / "plain"))
    with pytest.raises(InputError, match="no record in .* has a beat the beat model knows") as err:
        explain_file(model=str(model), input=str(tmp_path / "plain"), out=str(tmp_path / "o"))
    assert "\n" not in str(err.value)


def test_without_limit_the_first_beats_are_explained_and_said(beat_model_and_folder, tmp_path, monkeypatch):
    """Each beat's attribution.npy holds its whole record (MIT-BIH 100: 2,273 beats, 12 GB): without
    --limit a folder covers the first beats and says so."""
    import medlens.app.explain_beats as explain_beats

    model, folder, beats = beat_model_and_folder
    monkeypatch.setattr(explain_beats, "FIRST_BEATS", 2)
    result = explain_file(model=str(model), input=str(folder), out=str(tmp_path / "o"))
    assert result.explained == 2
    assert result.notes == [f"explained the first 2 of the {len(beats)} beats (record order); --limit N explains "
                            "more, one record's --start SECONDS one beat"]
