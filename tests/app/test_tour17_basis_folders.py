"""``medlens basis --data FOLDER [--labels L.csv]``: a folder of scans (PNG, or DICOM files named by
UID with a PatientName) is read through the model's recipe and gives the same retrievals as the
same cases saved as an npz; retrieved cases are named by their ids, never by file name or patient;
a folder without labels still retrieves (labels unknown); a missing labels file is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medlens.cli import main

from tests.app.tour17_scans import PATIENT, images, write_dicoms, write_model, write_npz, write_pngs


def _basis(tmp_path, data, out, *extra):
    args = ["basis", "--model", str(tmp_path / "m.pt"), "--data", str(data), "--k", "3", "--method", "gradient",
            "--out", str(out), *extra]
    assert main(args) == 0
    return json.loads((out / "basis.json").read_text())


def _neighbours(summary):
    return [[(n["train_index"], n["label"], n["same_image"], round(n["similarity"], 5)) for n in q["neighbours"]]
            for q in summary["queries"]]


@pytest.mark.parametrize("kind", ["png", "dicom"])
def test_a_folder_retrieves_as_its_npz_does(tmp_path, kind):
    pixels, labels = images(), np.arange(10) % 2
    write_model(tmp_path / "m.pt")
    if kind == "png":
        folder = write_pngs(tmp_path / "scans", pixels, labels)
        extra = ["--labels", str(tmp_path / "labels.csv")]
    else:
        folder = write_dicoms(tmp_path / "scans", pixels)
        extra = []
    npz = write_npz(tmp_path / "same.npz", {"train": (pixels, labels), "test": (pixels[[4, 7]], labels[[4, 7]])})
    from_npz = _basis(tmp_path, npz, tmp_path / "npz", "--index", "0", "--index", "1")
    from_folder = _basis(tmp_path, folder, tmp_path / "folder", "--index", "4", "--index", "7", *extra)
    if kind == "dicom":  # no labels file: the same neighbours, their labels unknown
        from_npz = {"queries": [{"neighbours": [{**n, "label": None} for n in q["neighbours"]]}
                                for q in from_npz["queries"]]}
    assert _neighbours(from_folder) == _neighbours(from_npz)
    first = from_folder["queries"][0]["neighbours"][0]
    assert (first["case"], first["same_image"]) == ("case-0004", True)  # the query itself, flagged
    assert [q["query"] for q in from_folder["queries"]] == ["case-0004", "case-0007"]
    written = (tmp_path / "folder" / "basis.json").read_text() + (tmp_path / "folder" / "report.html").read_text()
    for secret in ("patient_0", "1.2.826.0.1.3680043.9.7177", PATIENT, "PID_0", str(folder)):
        assert secret not in written
    assert "case-0004" in (tmp_path / "folder" / "report.html").read_text()
    if kind == "dicom":
        assert "unknown" in (tmp_path / "folder" / "report.html").read_text()


@pytest.mark.parametrize("command", ["basis", "concepts"])
def test_a_missing_labels_file_is_one_line(tmp_path, capsys, command):
    write_model(tmp_path / "m.pt")
    folder = write_pngs(tmp_path / "scans", images(4))
    code = main([command, "--model", str(tmp_path / "m.pt"), "--data", str(folder), "--labels",
                 str(tmp_path / "nowhere.csv"), "--out", str(tmp_path / "b")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == f"medlens: error: labels file {tmp_path / 'nowhere.csv'} not found"


def test_a_model_trained_on_the_folder_retrieves_from_its_training_split(tmp_path, capsys):
    pixels, labels = images(12), np.arange(12) % 2
    folder = write_pngs(tmp_path / "scans", pixels, labels)
    csv = str(tmp_path / "labels.csv")
    assert main(["train", "--data", str(folder), "--labels", csv, "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "m.pt")]) == 0
    from medlens.models import load_model

    train = load_model(tmp_path / "m.pt")[1]["split_positions"]["train"]
    summary = _basis(tmp_path, folder, tmp_path / "b", "--labels", csv, "--index", str(train[0]))
    assert summary["training_cases"] == "the model's train split of this folder"
    first = summary["queries"][0]["neighbours"][0]
    assert (first["case"], first["same_image"]) == (f"case-{train[0]:04d}", True)
    assert {n["case"] for q in summary["queries"] for n in q["neighbours"]} <= {f"case-{p:04d}" for p in train}
    assert f"same image as training case-{train[0]:04d} (labelled class {labels[train[0]]})" in capsys.readouterr().out


def test_a_folder_over_the_memory_budget_is_refused_in_one_line(tmp_path, capsys):
    write_model(tmp_path / "m.pt")
    folder = write_pngs(tmp_path / "scans", images(10))  # 10 x 784 float32 values: 31 KB
    assert main(["basis", "--model", str(tmp_path / "m.pt"), "--data", str(folder), "--memory-mb", "0.005",
                 "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "10 cases of model input (1, 28, 28) need 0.03 MB" in err
