"""``medlens predict``: predictions.csv for every kind of data, whose metrics equal those recomputed
from the file's own columns, resumable like the audit."""

from __future__ import annotations

import json
import re

import pytest

from medlens.cli import main
from tests.app.kinds_data import (
    close, metrics_from_rows, read_predictions, write_beats_record, write_notes, write_npz, write_scans,
)


def _check_metrics(out):
    rows, names = read_predictions(out / "predictions.csv")
    stored = json.loads((out / "metrics.json").read_text())
    again = metrics_from_rows(rows, names)
    assert stored["n_labelled"] == again["n_labelled"] == len(rows)
    for key in ("accuracy", "auroc", "expected_calibration_error"):
        assert close(stored[key], again[key], 1e-9), (key, stored[key], again[key])
    return rows, names, stored


def test_npz_predictions_metrics_and_resume(tmp_path, capsys):
    data, model = tmp_path / "d.npz", tmp_path / "m.pt"
    write_npz(data)
    assert main(["train", "--data", str(data), "--epochs", "2", "--out", str(model), "--quiet"]) == 0
    full = tmp_path / "full"
    assert main(["predict", "--model", str(model), "--data", str(data), "--out", str(full), "--quiet"]) == 0
    rows, names, stored = _check_metrics(full)
    assert names == ["a", "b"] and {r["label"] for r in rows} == {"a", "b"} and len(rows) == 20
    # a run stopped after 8 cases, then resumed, writes the same file as one uninterrupted run
    part = tmp_path / "part"
    assert main(["predict", "--model", str(model), "--data", str(data), "--out", str(part), "--limit", "8",
                 "--cases-per-batch", "4", "--quiet"]) == 0
    assert len(read_predictions(part / "predictions.csv")[0]) == 8
    capsys.readouterr()
    assert main(["predict", "--model", str(model), "--data", str(data), "--out", str(part),
                 "--cases-per-batch", "4", "--quiet"]) == 0
    assert "predicted 12 new case(s) of 20" in capsys.readouterr().out
    assert (part / "predictions.csv").read_text() == (full / "predictions.csv").read_text()
    # another model in the same folder is refused in one line
    other = tmp_path / "other.pt"
    assert main(["train", "--data", str(data), "--epochs", "1", "--seed", "3", "--out", str(other), "--quiet"]) == 0
    assert main(["predict", "--model", str(other), "--data", str(data), "--out", str(part), "--quiet"]) == 2
    assert "another model" in capsys.readouterr().err


def test_scans_with_word_labels_and_patients_kept_apart(tmp_path, capsys):
    from medlens.data.cases import open_cases
    from medlens.models import load_model

    folder, labels = tmp_path / "scans", tmp_path / "labels.csv"
    rows = write_scans(folder, labels)
    model = tmp_path / "m.pt"
    assert main(["train", "--data", str(folder), "--labels", str(labels), "--size", "16,16", "--epochs", "2",
                 "--out", str(model), "--quiet"]) == 0
    _m, meta = load_model(model)
    assert meta["class_names"] == ["lesion", "normal"]
    names = open_cases(folder).files  # the files, as the labels file names them
    group = {r["case"]: r["group"] for r in rows}
    patients = {s: {group[names[i]] for i in pos} for s, pos in meta["split_positions"].items()}
    assert all(patients.values())
    assert not (patients["train"] & patients["val"]) and not (patients["train"] & patients["test"])
    assert not (patients["val"] & patients["test"])
    assert sum(len(p) for p in meta["split_positions"].values()) == len(rows)

    out = tmp_path / "pred"
    assert main(["predict", "--model", str(model), "--data", str(folder), "--labels", str(labels),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed
    pred_rows, pred_names, _ = _check_metrics(out)
    assert pred_names == ["lesion", "normal"]
    assert {r["label"] for r in pred_rows} == {"lesion", "normal"} <= set(pred_names)
    assert {r["predicted"] for r in pred_rows} <= {"lesion", "normal"}
    explained = tmp_path / "explained"
    assert main(["explain", "--model", str(model), "--input", str(folder / "c02.png"), "--out", str(explained),
                 "--quiet"]) == 0
    assert json.loads((explained / "summary.json").read_text())["predicted_class"] in ("lesion", "normal")


def test_notes_train_predict_explain_and_attention(tmp_path, capsys):
    from medlens.models import load_model

    notes = tmp_path / "notes.csv"
    write_notes(notes, n=80, text_column="report", label_column="finding")
    model = tmp_path / "notes.pt"
    assert main(["train", "--data", str(notes), "--text-column", "report", "--label-column", "finding",
                 "--epochs", "6", "--max-length", "12", "--out", str(model), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "trained attention-rnn" in printed and "truncated to 12 tokens" in printed
    _m, meta = load_model(model)
    assert meta["class_names"] == ["abnormal", "normal"] and meta["input_kind"] == "notes"
    assert json.loads(meta["tokenizer"])  # the tokenizer travels in the model file
    assert meta["text"]["split"] == "by group"

    out = tmp_path / "pred"
    assert main(["predict", "--model", str(model), "--data", str(notes), "--text-column", "report",
                 "--label-column", "finding", "--out", str(out), "--quiet"]) == 0
    assert "truncated" in capsys.readouterr().out
    rows, names, stored = _check_metrics(out)
    assert names == ["abnormal", "normal"] and rows[0]["case"] == "case-0000"  # the file's ids: identifiers.csv only
    assert stored["auroc"] > 0.9  # one word tells the class

    note = tmp_path / "note.txt"
    note.write_text("Mild cardiomegaly. The lungs are clear.", encoding="utf-8")
    explained = tmp_path / "explained"
    assert main(["explain", "--model", str(model), "--input", str(note), "--method", "grad_x_input",
                 "--out", str(explained), "--quiet"]) == 0
    tokens = (explained / "tokens.csv").read_text().splitlines()
    assert tokens[0] == "position,token,word,grad_x_input,attention"
    assert tokens[2].split(",")[1] == "cardiomegaly" and (explained / "note.png").is_file()
    summary = json.loads((explained / "summary.json").read_text())
    assert set(summary["probabilities"]) == {"abnormal", "normal"}

    report = tmp_path / "report"
    assert main(["report", "--model", str(model), "--input", str(note), "--basis-data", str(notes), "--text-column",
                 "report", "--label-column", "finding", "--k", "3", "--out", str(report), "--quiet"]) == 0
    case = json.loads((report / "case.json").read_text())
    assert case["top_words"]["attention"] and len(case["similar"]) == 3
    assert all("case" not in s for s in case["similar"])  # case ids withheld unless asked
    page = (report / "report.html").read_text()
    assert "cardiomegaly" in page and "n001" not in page

    att = tmp_path / "attention"
    assert main(["attention", "--model", str(model), "--data", str(notes), "--text-column", "report",
                 "--label-column", "finding", "--limit", "12", "--permutations", "5", "--ig-steps", "4",
                 "--examples", "1", "--out", str(att)]) == 0
    assert json.loads((att / "attention.json").read_text())["summary"]
    assert main(["explain", "--model", str(model), "--input", str(note), "--method", "gradcam",
                 "--out", str(tmp_path / "x"), "--quiet"]) == 2
    # audit reads the notes file with the same columns (tests/audit/test_audit_notes.py audits notes)
    assert main(["audit", "--model", str(model), "--data", str(notes), "--labels", str(notes), "--out",
                 str(tmp_path / "a"), "--quiet"]) == 2
    assert "a notes file carries its labels in a column" in capsys.readouterr().err


def test_records_train_on_beats_predict_and_explain_a_beat(tmp_path, capsys):
    from medlens.models import load_model

    folder = tmp_path / "records"
    folder.mkdir()
    beats = write_beats_record(folder)
    model = tmp_path / "beats.pt"
    assert main(["train", "--data", str(folder), "--windows", "beats", "--before", "0.25", "--after", "0.45",
                 "--annotation-labels", "N:normal,V:ventricular", "--epochs", "4", "--out", str(model),
                 "--quiet"]) == 0
    assert "unmapped symbol '+'" in capsys.readouterr().out
    _m, meta = load_model(model)
    assert meta["recipe"]["fs"] == 250 and meta["recipe"]["size"] == [175]
    assert meta["windows"]["annotation_labels"] == {"N": "normal", "V": "ventricular"}
    assert meta["split"].startswith("by stretch")

    out = tmp_path / "pred"
    assert main(["predict", "--model", str(model), "--data", str(folder), "--out", str(out), "--quiet"]) == 0
    rows, names, stored = _check_metrics(out)
    assert names == ["normal", "ventricular"] and len(rows) == len(beats)
    assert stored["accuracy"] > 0.9
    # a beat of the last stretch (test), explained through the stored recipe: a strip in seconds
    sample, symbol = beats[-3]
    explained = tmp_path / "beat"
    assert main(["explain", "--model", str(model), "--input", str(folder / "rec"), "--method", "integrated_gradients",
                 "--start", f"{sample / 250 - 0.25:.4f}", "--out", str(explained), "--quiet"]) == 0
    summary = json.loads((explained / "summary.json").read_text())
    assert summary["preprocessing"]["geometry"]["span"][0] == pytest.approx(sample - 62, abs=1)
    assert (explained / "signal.png").is_file()
    # the case report draws the same window at its time in the record, with the beat's label
    reported = tmp_path / "report"
    start = sample / 250 - 0.25
    assert main(["report", "--model", str(model), "--input", str(folder / "rec"), "--methods", "gradient",
                 "--start", f"{start:.4f}", "--out", str(reported), "--quiet"]) == 0
    page = (reported / "report.html").read_text()
    viewer = json.loads(re.search(r'<script type="application/json" class="ml-data">(.*?)</script>', page, re.S).group(1))
    assert viewer["rate"] == 250 and viewer["start"] == pytest.approx(start, abs=1 / 250)
    labels = {(round(a["at"]), a["label"]) for a in viewer["annotations"]}
    assert (62, symbol) in {(round(at), lab) for at, lab in labels} or (63, symbol) in labels
    assert "About this record" in page and "whole scan" not in page


def test_a_folder_of_nifti_volumes_trains_a_3d_model(tmp_path):
    import csv

    import nibabel as nib
    import numpy as np

    from medlens.models import load_model

    folder = tmp_path / "volumes"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        v = rng.normal(0, 1, (12, 12, 8)).astype(np.float32)
        if i % 2:
            v[3:9, 3:9, 2:6] += 3
        nib.save(nib.Nifti1Image(v, np.diag([1.5, 1.5, 3.0, 1.0])), folder / f"v{i:02d}.nii.gz")
        rows.append({"case": f"v{i:02d}.nii.gz", "label": "lesion" if i % 2 else "normal"})
    labels = tmp_path / "labels.csv"
    with open(labels, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["case", "label"])
        w.writeheader()
        w.writerows(rows)
    model = tmp_path / "vol.pt"
    assert main(["train", "--data", str(folder), "--labels", str(labels), "--size", "8,8,6", "--epochs", "1",
                 "--out", str(model), "--quiet"]) == 0
    m, meta = load_model(model)
    assert meta["input_shape"] == [1, 8, 8, 6] and m.config["spatial_dims"] == 3
    out = tmp_path / "pred"
    assert main(["predict", "--model", str(model), "--data", str(folder), "--labels", str(labels), "--out", str(out),
                 "--quiet"]) == 0
    rows_, names, _ = _check_metrics(out)
    assert names == ["lesion", "normal"] and len(rows_) == 12
