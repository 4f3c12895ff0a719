"""``evaluate`` and ``audit`` of a model trained on beat windows score the beats, as ``predict`` does.

Seen on MIT-BIH record 100 (2270 beats): ``medlens audit --model beats.pt --data mitdb/`` audited
one case, the record read as a scan (its first 0.7 s, no label), and ``evaluate`` scored that one
case with "1 of 1 case(s) have no label".
"""

from __future__ import annotations

import csv
import json

import pytest

from medlens.cli import main
from tests.app.kinds_data import write_beats_record

pytest.importorskip("wfdb")


@pytest.fixture(scope="module")
def beats(tmp_path_factory):
    folder = tmp_path_factory.mktemp("records")
    marks = write_beats_record(folder, seconds=40.0)
    model = folder.parent / "beats.pt"
    assert main(["train", "--data", str(folder), "--windows", "beats", "--before", "0.25", "--after", "0.45",
                 "--annotation-labels", "N:normal,V:ventricular", "--epochs", "2", "--out", str(model),
                 "--quiet"]) == 0
    return folder, model, marks


def _expected_names(marks, n):  # the record is named by its position (identifiers.csv names it "rec")
    return [f"case-0000@{sample / 250:.3f}s" for sample, _ in marks[:n]]


def test_evaluate_scores_the_beat_windows_with_their_annotation_labels(beats, tmp_path, capsys):
    folder, model, marks = beats
    out = tmp_path / "eval"
    assert main(["evaluate", "--model", str(model), "--data", str(folder), "--methods", "gradient",
                 "--metrics", "deletion_auc", "--limit", "8", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "results for 8 cases" in printed and "no label" not in printed  # the explained class: each beat's label
    config = json.loads((out / "summary.json").read_text())["config"]
    assert config["target"] == "label" and config["n_samples"] == 8 and config["data"] == "signal records (8 beat windows)"
    familiar = list(csv.DictReader((out / "familiarity.csv").open()))
    assert [r["case"] for r in familiar] == _expected_names(marks, 8)


def test_audit_audits_each_beat_labelled_by_its_annotation(beats, tmp_path):
    folder, model, marks = beats
    out = tmp_path / "audit"
    assert main(["audit", "--model", str(model), "--data", str(folder), "--methods", "gradient",
                 "--cluster-method", "gradient", "--metric-option", "deletion_auc.steps=4",
                 "--metric-option", "insertion_auc.steps=4", "--limit", "12", "--out", str(out), "--quiet"]) == 0
    rows = list(csv.DictReader((out / "cases.csv").open()))
    assert [r["case"] for r in rows] == _expected_names(marks, 12)
    assert [int(r["label"]) for r in rows] == [int(symbol == "V") for _, symbol in marks[:12]]
    assert list(csv.DictReader((out / "identifiers.csv").open())) == [{"case": "case-0000", "record": "rec"}]


def test_a_labels_file_for_beats_is_refused_in_one_line(beats, tmp_path, capsys):
    folder, model, _ = beats
    labels = tmp_path / "records.csv"
    labels.write_text("record,label\nrec,normal\n")
    assert main(["evaluate", "--model", str(model), "--data", str(folder), "--labels", str(labels),
                 "--out", str(tmp_path / "e"), "--quiet"]) == 2
    assert "beat windows take their labels from the annotations" in capsys.readouterr().err
