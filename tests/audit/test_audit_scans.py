"""``medlens audit`` on scans: the reading path of ``medlens explain``, series grouped, labels from a
CSV, unreadable files listed while the rest go on, resumable, one-line errors."""

from __future__ import annotations

import csv

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image
from pydicom.data import get_testdata_file

from medlens.audit.sources import SourceSpec, open_source
from medlens.cli import main
from medlens.data import read
from medlens.data.recipe import Recipe, prepare
from medlens.models import CNN, save_model
from tests.region_scans import write_region_scans

OPTIONS = ["--methods", "gradient", "--cluster-method", "gradient", "--metric-option", "deletion_auc.steps=4",
           "--metric-option", "insertion_auc.steps=4", "--cases-per-batch", "2", "--quiet"]
RECIPE = Recipe(normalize="minmax", channels=1, size=(24, 24))


def _series(folder, n=3):
    """``n`` CT slices of one series written by pydicom (one SeriesInstanceUID)."""
    folder.mkdir(parents=True, exist_ok=True)
    uid = pydicom.uid.generate_uid()
    for k in range(n):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.SeriesInstanceUID = uid
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.ImagePositionPatient = [-158.1, -179.0, 2.5 * k]
        ds.save_as(folder / f"slice{k}.dcm")


@pytest.fixture
def scans(tmp_path):
    root = tmp_path / "scans"
    root.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a.png", "b.png"):
        Image.fromarray((rng.random((40, 30)) * 255).astype(np.uint8)).save(root / name)
    _series(root)                      # three slices loose among the pictures: one case
    _series(root / "ct")               # a series folder: one case named by the folder
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 10)
    (root / "notes.txt").write_text("not a case")
    return root


@pytest.fixture
def model(tmp_path):
    torch.manual_seed(0)
    cnn = CNN(2, 1, 2, widths=(4, 6), input_shape=(1, 24, 24)).eval()
    return save_model(cnn, tmp_path / "m.pt", {"class_names": ["no", "yes"], "input_shape": [1, 24, 24], "recipe": RECIPE})


def test_scans_are_read_as_explain_reads_them_and_unreadable_files_are_listed(scans, model, tmp_path, capsys):
    (tmp_path / "labels.csv").write_text("case,label\na.png,yes\nct,0\n")
    out = tmp_path / "audit"
    argv = ["audit", "--model", str(model), "--data", str(scans), "--labels", str(tmp_path / "labels.csv"),
            "--out", str(out), "--slice", "1", *OPTIONS]
    assert main(argv) == 3  # some cases failed, the others were audited
    captured = capsys.readouterr()
    printed = captured.out
    assert "case-0002 failed: case-0002 is not a readable image file" in captured.err
    assert "audited 4 new case(s) of 5" in printed
    assert "skipped pointing_game, mass_in_mask: the data have no evidence masks" in printed
    assert "1 case(s) could not be read" in printed and "broken.png" not in printed  # names only in the file
    rows = list(csv.DictReader((out / "cases.csv").open()))
    # named by pseudonymous ids, in the sorted order of their files (stable indices)
    assert [r["case"] for r in rows] == ["case-0000", "case-0001", "case-0003", "case-0004"]
    assert [r["label"] for r in rows] == ["1", "", "0", ""]
    unreadable = list(csv.DictReader((out / "unreadable.csv").open()))
    assert [u["case"] for u in unreadable] == ["case-0002"] and "not a readable image file" in unreadable[0]["error"]
    assert "broken" not in unreadable[0]["error"]
    identifiers = list(csv.DictReader((out / "identifiers.csv").open()))
    assert [(r["case"], r["file"]) for r in identifiers] == [
        ("case-0000", "a.png"), ("case-0001", "b.png"), ("case-0002", "broken.png"), ("case-0003", "ct"),
        ("case-0004", "series1-slice0")]
    # the model input is the recipe's, exactly as explain prepares the file (a series: the slice named)
    source = open_source(SourceSpec(str(scans), input_shape=(1, 24, 24), recipe=RECIPE.replace(slice=1).to_dict()))
    batch = source.load([0, 3])
    assert torch.equal(batch.x[0], prepare(read(scans / "a.png"), RECIPE).x[0])
    assert torch.equal(batch.x[1], prepare(read(scans / "ct"), RECIPE.replace(slice=1)).x[0])
    # resuming computes nothing and does not retry the unreadable file
    assert main(argv) == 3
    assert "audited 0 new case(s) of 5" in capsys.readouterr().out


def test_a_single_series_folder_is_one_case(tmp_path, model):
    _series(tmp_path / "one")
    source = open_source(SourceSpec(str(tmp_path / "one"), input_shape=(1, 24, 24), recipe=RECIPE.replace(slice=0).to_dict()))
    assert source.names == ["case-0000"] and source.files == ["one"] and source.load([0]).x.shape == (1, 1, 24, 24)


@pytest.mark.parametrize("extra, message", [
    (["--labels", "labels.csv"], "names case 'nope.png', which is not among the 5 cases"),
    (["--labels", "missing.csv"], "labels file"),
    (["--data", "empty"], "nothing readable in"),
    (["--data", "pneumoniamnist", "--labels", "labels.csv"], "--labels is for scans"),
    (["--window", "brain", "--slice", "1"], "2 case(s)"),  # a CT window on pictures: the PNGs fail, the DICOM CT goes on
])
def test_bad_scans_input_exits_2_with_one_line(scans, model, tmp_path, capsys, extra, message):
    (tmp_path / "labels.csv").write_text("case,label\nnope.png,1\n")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "x.weird").write_bytes(b"junk")
    extra = [str(tmp_path / e) if e in ("labels.csv", "missing.csv", "empty") else e for e in extra]
    argv = ["audit", "--model", str(model), "--data", str(scans), "--out", str(tmp_path / "o"), *OPTIONS, *extra]
    code = main(argv)
    captured = capsys.readouterr()
    if message == "2 case(s)":  # not an error: the pictures are listed, the CT series are audited
        assert code == 3 and "3 case(s) could not be read" in captured.out
        return
    err = captured.err.strip()
    assert code == 2 and message in err and "\n" not in err, err


def test_masks_named_in_the_labels_file_give_the_audit_its_localisation_numbers(tmp_path, capsys):
    """The evaluate test's known answer, through the audit: a model that reads one region, masks
    drawn on 40x40 scans for a 20x20 model, so the gradient points inside every mask."""
    scans, labels, region = write_region_scans(tmp_path, seed=4)
    out = tmp_path / "audit"
    assert main(["audit", "--model", str(region), "--data", str(scans), "--labels", str(labels),
                 "--size", "20,20", "--normalize", "unit", "--out", str(out), *OPTIONS]) == 0
    assert "the data have no evidence masks" not in capsys.readouterr().out
    cases = list(csv.DictReader((out / "cases.csv").open()))
    assert len(cases) == 4
    pointing = [float(v) for r in cases for k, v in r.items() if "pointing_game" in k]
    assert pointing and all(v == 1.0 for v in pointing)
