"""Inputs of the wrong kind for ``predict`` and ``evaluate``, and a notes file for a scan model.

Seen on real files: ``medlens predict --model scans.pt --data mitdb/100`` (an image model given an
ECG record) printed "predicted 0 new case(s) of 1" and exited 0, leaving an empty
predictions.csv; with some unreadable cases it exited 0 too. A note given to an image or signal
model read "note.txt is not a file format medlens reads (it reads DICOM, ...)", and ``evaluate``
of a text model "recipe size must be positive whole numbers, got ()".
"""

from __future__ import annotations

import pytest

from medlens.cli import main
from tests.app.kinds_data import write_beats_record, write_notes, write_scans

pytest.importorskip("wfdb")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    write_scans(root / "scans", root / "labels.csv", n=12)
    write_notes(root / "notes.csv", n=24)
    (root / "records").mkdir()
    write_beats_record(root / "records", seconds=20.0)
    scan_model, text_model = root / "scans.pt", root / "notes.pt"
    assert main(["train", "--data", str(root / "scans"), "--labels", str(root / "labels.csv"), "--size", "16,16",
                 "--epochs", "1", "--out", str(scan_model), "--quiet"]) == 0
    assert main(["train", "--data", str(root / "notes.csv"), "--epochs", "1", "--out", str(text_model), "--quiet"]) == 0
    return root, scan_model, text_model


def _one_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("medlens: error: "), err
    return lines[0]


def test_predict_with_nothing_readable_is_refused_and_writes_nothing(models, tmp_path, capsys):
    root, scan_model, _ = models
    out = tmp_path / "p"
    assert main(["predict", "--model", str(scan_model), "--data", str(root / "records" / "rec"), "--out", str(out),
                 "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "nothing readable" in line and "the model takes 2-D images" in line and "signal (WFDB" in line
    assert not out.exists()


def test_predict_with_some_cases_unreadable_exits_3_naming_them(models, tmp_path, capsys):
    root, scan_model, _ = models
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.png").write_bytes((root / "scans" / "c00.png").read_bytes())
    (mixed / "b.png").write_bytes((root / "scans" / "c01.png").read_bytes()[:40])  # cut short
    out = tmp_path / "p"
    assert main(["predict", "--model", str(scan_model), "--data", str(mixed), "--out", str(out), "--quiet"]) == 3
    err = capsys.readouterr().err
    assert "medlens: case-0001 failed:" in err and "1 case(s) failed" in err
    assert (out / "predictions.csv").read_text().count("\n") == 2  # the header and a.png


@pytest.mark.parametrize("command", ["explain", "report", "predict", "evaluate", "audit"])
def test_a_notes_file_given_to_a_scan_model_is_refused_naming_both_kinds(models, tmp_path, capsys, command):
    root, scan_model, _ = models
    where = "--input" if command in ("explain", "report") else "--data"
    assert main([command, "--model", str(scan_model), where, str(root / "notes.csv"), "--out", str(tmp_path / "o"),
                 "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line == ("medlens: error: the model takes 2-D images (1 x 16 x 16) but the input is a notes file "
                    "(notes.csv, text): only a model trained on notes reads it")
    assert not (tmp_path / "o").exists()


def test_evaluate_of_a_text_model_points_to_the_audit(models, tmp_path, capsys):
    root, _, text_model = models
    assert main(["evaluate", "--model", str(text_model), "--data", str(root / "notes.csv"), "--out",
                 str(tmp_path / "e"), "--quiet"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert "this model reads text" in line and "medlens audit" in line
