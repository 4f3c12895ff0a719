"""``medlens report --basis-data FOLDER`` reads a folder of scans exactly as ``medlens basis --data
FOLDER`` does: the same retrieved cases, named case-0000... (never by file or patient name), a
follow-up scan of the query's patient flagged ``same_patient``, and a retrieved case whose header
says its pixels identify the patient drawn blank. Before, a folder was refused as basis data."""

from __future__ import annotations

import json

import numpy as np
import pydicom

from medlens.cli import main
from tests.app.test_tour24_same_patient import PATIENTS, _follow_ups
from tests.app.tour17_scans import PATIENT, write_dicoms, write_model


def _folders(tmp_path):
    pixels = _follow_ups()
    data = write_dicoms(tmp_path / "train", pixels, PATIENTS)
    query = np.clip(pixels[2].astype(np.int16) + 9, 0, 255).astype(np.uint8)  # BRAVO's third scan: a new image
    write_dicoms(tmp_path / "query", query[None], ["PAT-BRAVO"], first_uid=900)
    return write_model(tmp_path / "m.pt"), data, next((tmp_path / "query").iterdir())


def _report(tmp_path, model, data, query, *extra):
    out = tmp_path / "r"
    assert main(["report", "--model", str(model), "--input", str(query), "--basis-data", str(data), "--k", "6",
                 "--methods", "gradient", "--out", str(out), *extra]) == 0
    return json.loads((out / "case.json").read_text()), (out / "report.html").read_text()


def test_the_report_retrieves_what_basis_retrieves_and_flags_the_follow_up(tmp_path, capsys):
    model, data, query = _folders(tmp_path)
    assert main(["basis", "--model", str(model), "--data", str(data), "--input", str(query), "--k", "6",
                 "--out", str(tmp_path / "b")]) == 0
    basis = json.loads((tmp_path / "b" / "basis.json").read_text())["queries"][0]["neighbours"]
    found, html = _report(tmp_path, model, data, query)
    assert [n["case"] for n in found["basis"]] == [n["case"] for n in basis]
    assert {n["case"] for n in found["basis"] if n["same_patient"]} == {"case-0002", "case-0003"}  # BRAVO's scans
    assert "training case-0002: label" in html and "the patient is in the training data" in html
    files = [p.name for p in data.iterdir()] + [query.name]
    for text in (json.dumps(found), html):
        assert "PAT-" not in text and PATIENT not in text and not any(f in text for f in files)


def test_a_retrieved_case_with_burned_in_annotation_is_drawn_blank(tmp_path, capsys):
    model, data, query = _folders(tmp_path)
    for path in data.iterdir():
        ds = pydicom.dcmread(path)
        ds.BurnedInAnnotation = "YES"
        ds.save_as(path)
    found, html = _report(tmp_path, model, data, query)
    assert "Drawn without their image (6 similar case(s))" in html
    _found, shown = _report(tmp_path, model, data, query, "--show-identifiers")
    assert "Drawn without their image" not in shown
