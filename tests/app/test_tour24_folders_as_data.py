"""``medlens featurevis --data`` and ``medlens attention --data`` read a folder of scans or records
through the model's recipe, as basis and concepts do (before: "... is a folder, expected a npz
file"), and ``--limit N`` reads only the N cases it uses: concepts read the whole folder first."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from medlens.cli import main
from medlens.data.formats.folders import ScanSet
from medlens.models import save_model
from medlens.models.attention_rnn import AttentionRNN
from tests.app.tour17_scans import images, write_model, write_pngs


@pytest.fixture
def reads(monkeypatch):
    """The positions of every case prepared (read and made a model input)."""
    seen: list[int] = []
    prepare = ScanSet.prepare

    def counted(self, index):
        seen.append(int(index))
        return prepare(self, index)

    monkeypatch.setattr(ScanSet, "prepare", counted)
    return seen


def test_featurevis_shows_reference_cases_of_a_folder(tmp_path, reads):
    folder = write_pngs(tmp_path / "scans", images(12))
    model = write_model(tmp_path / "m.pt")
    out = tmp_path / "fv"
    assert main(["featurevis", "--model", str(model), "--objective", "channel", "--layer", "features.block1.act",
                 "--channels", "0", "--steps", "2", "--data", str(folder), "--references", "2", "--limit", "4",
                 "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    shown = [r["case"] for r in summary["units"][0]["reference_cases"]]
    assert len(shown) == 2 and set(shown) <= {"case-0000", "case-0001", "case-0002", "case-0003"}
    assert sorted(set(reads)) == [0, 1, 2, 3]  # the first 4 cases only
    rows = {r["case"]: r["file"] for r in csv.DictReader((out / "identifiers.csv").open())}
    assert rows["case-0000"] == "patient_00.png"
    assert "patient_" not in (out / "summary.json").read_text()


def test_attention_reads_a_folder_of_records_through_the_recipe(tmp_path):
    pytest.importorskip("wfdb")
    from tests.app.kinds_data import write_beats_record

    folder = tmp_path / "records"
    folder.mkdir()
    for name in ("a", "b"):
        write_beats_record(folder, name=name, seconds=4.0)
    torch.manual_seed(0)
    net = AttentionRNN(2, in_channels=2, hidden_size=6, attention_size=5, front_channels=4).eval()
    model = save_model(net, tmp_path / "rnn.pt", {"class_names": ["normal", "ventricular"], "input_shape": [2, 175]})
    out = tmp_path / "att"
    assert main(["attention", "--model", str(model), "--data", str(folder), "--fs", "250", "--permutations", "2",
                 "--ig-steps", "0", "--examples", "1", "--out", str(out), "--quiet"]) == 0
    found = json.loads((out / "attention.json").read_text())
    assert found["summary"]["n_sequences"] == 2 and "2 case(s)" in found["data"]
    assert "records" not in found["data"]  # the folder is named by its kind, not its name
    assert (out / "identifiers.csv").exists()


def test_concepts_limit_reads_only_what_it_uses(tmp_path, reads):
    folder = write_pngs(tmp_path / "scans", images(20))
    model = write_model(tmp_path / "m.pt")
    out = tmp_path / "c"
    assert main(["concepts", "--model", str(model), "--data", str(folder), "--k", "2", "--epochs", "1", "--top", "1",
                 "--limit", "3", "--out", str(out), "--quiet"]) == 0
    found = json.loads((out / "concepts.json").read_text())
    assert len(set(reads)) == 6  # 3 fitted, 3 of the 4 held out; before: all 20
    assert found["fitted_on"].startswith("the first 3 (--limit) of")
    np.testing.assert_array_equal(np.asarray(found["top_images"]).shape, (2, 1))
