"""``medlens basis`` flags a retrieved training case of the query's patient that is another image
(a follow-up scan: the classic leak), not only a pixel-identical one. The patient is the labels'
``group`` column or the DICOM PatientID, compared by digest: basis.json, the printed warning and the
report say "the same patient", never the identifier. Before, only identical images were flagged."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from medlens.cli import main
from tests.app.tour17_scans import images, write_dicoms, write_model

PATIENTS = ["PAT-ALPHA", "PAT-ALPHA", "PAT-BRAVO", "PAT-BRAVO", "PAT-CHARLIE", "PAT-CHARLIE"]


def _follow_ups(seed: int = 0) -> np.ndarray:
    """Three patients, two scans each: the second the first with a little noise (a follow-up)."""
    first = images(3, seed).astype(np.int16)
    noise = np.random.default_rng(seed + 1).integers(-6, 7, first.shape)
    return np.clip(np.repeat(first, 2, axis=0) + np.stack([np.zeros_like(f) for f in first for _ in (0, 1)])
                   + np.stack([n * (k % 2) for n in noise for k in (0, 1)]), 0, 255).astype(np.uint8)


def _basis(tmp_path, data, query_args, capsys, k: int = 6):
    model = write_model(tmp_path / "m.pt")
    out = tmp_path / "b"
    assert main(["basis", "--model", str(model), "--data", str(data), *query_args, "--k", str(k),
                 "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    return json.loads((out / "basis.json").read_text()), printed, (out / "report.html").read_text()


def test_a_follow_up_scan_of_the_query_patient_is_flagged(tmp_path, capsys):
    pixels = _follow_ups()
    data = write_dicoms(tmp_path / "train", pixels, PATIENTS)
    query = np.clip(pixels[2].astype(np.int16) + 9, 0, 255).astype(np.uint8)  # BRAVO's third scan: a new image
    write_dicoms(tmp_path / "query", query[None], ["PAT-BRAVO"], first_uid=900)
    found, printed, html = _basis(tmp_path, data, ["--input", str(tmp_path / "query")], capsys)
    neighbours = found["queries"][0]["neighbours"]  # every training case (k = 6)
    assert {n["case"] for n in neighbours if n["same_patient"]} == {"case-0002", "case-0003"}  # BRAVO's two scans
    assert not any(n["same_image"] for n in neighbours) and all(n["same_patient"] is not None for n in neighbours)
    assert printed.count("is of the same patient as training case-000") == 2
    assert "the same patient as the query (another image)" in html
    for text in (json.dumps(found), printed, html):
        assert "PAT-" not in text


def test_other_patients_are_not_flagged_and_a_placeholder_names_no_patient(tmp_path, capsys):
    pixels = _follow_ups()
    data = write_dicoms(tmp_path / "train", pixels, ["ANONYMOUS"] * 6)
    write_dicoms(tmp_path / "query", pixels[2:3] // 2 + 60, ["ANONYMOUS"], first_uid=900)
    found, printed, _html = _basis(tmp_path, data, ["--input", str(tmp_path / "query")], capsys)
    assert all(n["same_patient"] is None for n in found["queries"][0]["neighbours"])  # unknown, not "same"
    assert "same patient" not in printed


def test_the_labels_group_column_names_the_patient(tmp_path, capsys):
    pixels = _follow_ups()
    folder = tmp_path / "pngs"
    folder.mkdir()
    rows = []
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(folder / f"scan_{i}.png")
        rows.append(f"scan_{i}.png,{i % 2},{PATIENTS[i]}")
    labels = tmp_path / "labels.csv"
    labels.write_text("case,label,group\n" + "\n".join(rows) + "\n")
    found, printed, html = _basis(tmp_path, folder, ["--labels", str(labels), "--index", "4"], capsys)
    by_case = {n["case"]: n for n in found["queries"][0]["neighbours"]}
    assert by_case["case-0004"]["same_image"] is True  # the query itself
    assert by_case["case-0005"] == {**by_case["case-0005"], "same_patient": True, "same_image": False}
    assert "is of the same patient as training case-0005" in printed and "PAT-" not in printed + html


def test_train_keeps_each_dicom_patient_in_one_split(tmp_path, capsys):
    """A user's folder of DICOM files, two scans per patient, a labels file without a group column:
    the split went by case at random, a patient's follow-up in the test split beside its first scan
    in training, and nothing said so. The DICOM PatientID now keeps each patient in one split."""
    from medlens.models import load_model

    patients = [f"PAT-{k:02d}" for k in range(8) for _ in (0, 1)]
    data = write_dicoms(tmp_path / "scans", images(16), patients)
    files = sorted(p.name for p in data.iterdir())
    (tmp_path / "labels.csv").write_text("case,label\n" + "\n".join(f"{f},{k // 2 % 2}" for k, f in enumerate(files)) + "\n")
    model = tmp_path / "m.pt"
    assert main(["train", "--data", str(data), "--labels", str(tmp_path / "labels.csv"), "--size", "28,28",
                 "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "split by patient (the scans' DICOM PatientID): 8 patient(s) with several scans" in printed
    meta = load_model(model)[1]
    split_of = {p: s for s, positions in meta["split_positions"].items() for p in positions}
    for k in range(0, 16, 2):  # the two scans of each patient: one split
        assert split_of[k] == split_of[k + 1]
    assert "PAT-" not in printed + json.dumps(meta, default=str)
