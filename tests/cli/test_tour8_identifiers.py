"""Identifiers in outputs, tried as a new user with files named after a patient (tour 8).

Seen: ``explain`` on a NIfTI whose ``aux_file`` / ``intent_name`` held a name wrote them into
``attribution.nii.gz`` (only ``descrip`` was cleared), and ``predict`` on a folder named after a
patient stored the folder's path in ``predictions.sqlite``. Every file under ``--out`` is searched
as bytes (gzip members decompressed), and every path name.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from PIL import Image

from medlens.cli import main
from medlens.data.recipe import Recipe
from medlens.models import CNN, save_model

NAME, MRN = "DOE^JOHN", "MRN-8472913"
SECRETS = (NAME, MRN, "DOE_JOHN", "MRN8472913", "8472913")


@pytest.fixture(scope="module")
def model(tiny_scan_model) -> Path:
    return tiny_scan_model


def _leaks(out: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(out.rglob("*")):
        rel = path.relative_to(out).as_posix()
        hits = [s for s in SECRETS if s in rel]
        if path.is_file() and path.name != "identifiers.csv":
            data = path.read_bytes()
            data = gzip.decompress(data) if path.suffix == ".gz" else data
            hits += [s for s in SECRETS if s.encode() in data]
        if hits:
            found[rel] = hits
    return found


def test_a_nifti_map_keeps_no_free_text_field_or_extension_of_its_source(model, tmp_path):
    img = nib.Nifti1Image(np.random.default_rng(0).normal(size=(24, 24, 6)).astype(np.float32), np.eye(4))
    img.header["descrip"] = f"{NAME} {MRN}".encode()
    img.header["aux_file"] = b"DOE_JOHN 8472913"
    img.header["intent_name"] = NAME.encode()
    img.header.extensions.append(nib.nifti1.Nifti1Extension(6, f"patient {NAME} {MRN}".encode()))  # 6: comment
    source = tmp_path / "head.nii.gz"
    nib.save(img, source)
    out = tmp_path / "out"
    assert main(["explain", "--model", str(model), "--input", str(source), "--method", "gradient", "--slice", "2",
                 "--quiet", "--out", str(out)]) == 0
    written = nib.load(out / "attribution.nii.gz")
    assert np.allclose(written.affine, img.affine) and written.shape == img.shape
    assert _leaks(out) == {}
    assert not written.header.extensions


def test_predict_stores_no_path_of_a_folder_named_after_a_patient(model, tmp_path, capsys):
    scans = tmp_path / f"{NAME}_{MRN}"
    scans.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        Image.fromarray((rng.random((30, 30)) * 255).astype(np.uint8)).save(scans / f"scan{k}.png")
    labels = tmp_path / "DOE_JOHN_labels.csv"
    labels.write_text("case,label\n" + "".join(f"scan{k}.png,{k % 2}\n" for k in range(3)))
    out = tmp_path / "out"
    args = ["predict", "--model", str(model), "--data", str(scans), "--labels", str(labels), "--quiet", "--out", str(out)]
    assert main(args) == 0
    assert _leaks(out) == {}
    printed = capsys.readouterr()
    assert not [s for s in SECRETS if s in printed.out + printed.err]
    assert main(args) == 0 and "predicted 0 new case(s) of 3" in capsys.readouterr().out  # the resume check still holds


def test_a_wfdb_records_name_and_comments_are_withheld_then_shown_escaped(tmp_path):
    """Seen: the record's name (its file name) was technical metadata, shown in every report; and a
    record given without ``.hea`` was not taken for a file, so its comments were neither listed as
    withheld nor shown with ``--show-identifiers``."""
    import json

    import wfdb

    torch.manual_seed(0)
    model = save_model(CNN(1, 2, 2, widths=(4, 8), input_shape=(2, 200)), tmp_path / "m1.pt",
                       {"input_shape": [2, 200], "class_names": ["a", "b"], "recipe": Recipe(fs=100)})
    signal = np.random.default_rng(0).uniform(-1, 1, (1000, 2))
    wfdb.wrsamp("DOE_JOHN_MRN8472913", fs=100, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=signal,
                fmt=["16", "16"], write_dir=str(tmp_path),
                comments=[f"age: 67 sex: M name: {NAME} {MRN} <script>alert(1)</script>"])
    record = tmp_path / "DOE_JOHN_MRN8472913"
    hidden, shown = tmp_path / "hidden", tmp_path / "shown"
    for out, extra in ((hidden, []), (shown, ["--show-identifiers"])):
        assert main(["report", "--model", str(model), "--input", str(record), "--methods", "gradient", "--quiet",
                     "--out", str(out), *extra]) == 0
    assert _leaks(hidden) == {}
    assert {"Comments", "Record"} <= set(json.loads((hidden / "case.json").read_text())["identifiers_withheld"])
    html = (shown / "report.html").read_text()
    assert f"name: {NAME} {MRN} &lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert" not in html


@pytest.fixture(scope="module")
def notes(tmp_path_factory) -> tuple[Path, Path]:
    """A notes file named after a patient, in a folder named after him, whose case ids are MRNs
    (``MRN-8472913NN``); and a text model trained on it by ``medlens train``."""
    import csv

    from tests.app.kinds_data import write_notes

    folder = tmp_path_factory.mktemp("notes") / f"{NAME}_{MRN}"
    folder.mkdir()
    path = folder / "DOE_JOHN_MRN8472913_notes.csv"
    rows = write_notes(path, n=40)
    for i, row in enumerate(rows):
        row["case"], row["group"] = f"{MRN}{i:02d}", f"{MRN}{i // 2:02d}"
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    model = folder.parent / "notes.pt"
    assert main(["train", "--data", str(path), "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    return path, model


@pytest.mark.parametrize("command", [
    ["predict", "--data", "NOTES"],
    ["explain", "--input", "NOTES", "--method", "grad_x_input", "--limit", "3"],
    ["report", "--input", "NOTES", "--basis-data", "NOTES"],
    ["attention", "--data", "NOTES", "--limit", "8", "--permutations", "5"],
])
def test_notes_outputs_name_neither_the_file_nor_the_case_ids(notes, tmp_path, capsys, command):
    """Seen: explain and predict wrote the file's case ids (MRNs) as the case column, explain's
    summary.json, report's similar notes and attention's page, JSON and printed line named the file."""
    path, model = notes
    out = tmp_path / "out"
    args = [str(path) if a == "NOTES" else a for a in command]
    assert main([args[0], "--model", str(model), *args[1:], "--out", str(out)]) == 0
    assert _leaks(out) == {}
    printed = capsys.readouterr()
    assert not [s for s in SECRETS if s in printed.out + printed.err]
    if command[0] in ("predict", "explain"):  # the one file that names them
        import csv

        rows = list(csv.DictReader((out / "identifiers.csv").open()))
        assert rows[0] == {"case": "case-0000", "note": f"{MRN}00", "row": "2"}  # a CSV header is row 1


def test_notes_are_named_by_the_files_ids_when_asked(notes, tmp_path):
    path, model = notes
    out = tmp_path / "out"
    assert main(["explain", "--model", str(model), "--input", str(path), "--method", "grad_x_input", "--limit", "2",
                 "--show-identifiers", "--quiet", "--out", str(out)]) == 0
    assert f"{MRN}01" in (out / "summary.csv").read_text()
    assert path.name in (out / "note-1" / "summary.json").read_text()


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> tuple[Path, Path]:
    """Two WFDB records named after patients, with N and V beats; a beat model trained on them."""
    from tests.app.kinds_data import write_beats_record

    folder = tmp_path_factory.mktemp("ecg") / f"{NAME}_{MRN}"
    folder.mkdir()
    for name in ("DOE_JOHN_MRN8472913", "DOE_JANE_MRN8472914"):
        write_beats_record(folder, name=name, seconds=30.0)
    model = folder.parent / "ecg.pt"
    assert main(["train", "--data", str(folder), "--windows", "beats", "--annotation-labels", "N:normal,V:ventricular",
                 "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    return folder, model


def test_a_model_trained_on_records_named_after_patients_holds_no_record_name(records):
    """Seen: the model file's ``test_from_seconds`` was keyed by record name; a model file is
    shared, and its data are named by kind only (:func:`medlens.data.cases.data_words`)."""
    import zipfile

    _folder, model = records
    with zipfile.ZipFile(model) as archive:
        data = b"".join(archive.read(name) for name in archive.namelist())
    assert not [s for s in SECRETS if s.encode() in data]


@pytest.mark.parametrize("command", [
    ["predict"],
    ["evaluate", "--methods", "gradient", "--metrics", "deletion_auc", "--limit", "6"],
    ["audit", "--methods", "gradient", "--cluster-method", "gradient", "--limit", "24",
     "--metric-option", "deletion_auc.steps=4", "--metric-option", "insertion_auc.steps=4"],
])
def test_record_windows_are_named_by_the_records_position_not_its_file_name(records, tmp_path, capsys, command):
    """Seen: a window was named ``RECORD@12.400s`` by its record's file name in predictions.csv,
    cases.csv, clusters.csv, familiarity.csv and the stores."""
    import csv

    folder, model = records
    out = tmp_path / "out"
    assert main([command[0], "--model", str(model), "--data", str(folder), *command[1:], "--quiet",
                 "--out", str(out)]) == 0
    assert _leaks(out) == {}
    printed = capsys.readouterr()
    assert not [s for s in SECRETS if s in printed.out + printed.err]
    assert list(csv.DictReader((out / "identifiers.csv").open())) == [
        {"case": "case-0000", "record": "DOE_JANE_MRN8472914"}, {"case": "case-0001", "record": "DOE_JOHN_MRN8472913"}]


def test_train_prints_the_kind_of_data_not_its_path(tmp_path, capsys):
    """Seen: ``trained cnn on /data/DOE^JOHN_MRN-8472913: ...`` although the model file itself
    names the data by kind only."""
    from tests.app.kinds_data import write_scans

    folder, labels = tmp_path / f"{NAME}_{MRN}", tmp_path / "labels.csv"
    write_scans(folder, labels, n=12)
    assert main(["train", "--data", str(folder), "--labels", str(labels), "--size", "16,16", "--epochs", "1",
                 "--out", str(tmp_path / "m.pt"), "--quiet"]) == 0
    printed = capsys.readouterr()
    assert "trained cnn on" in printed.out
    assert not [s for s in SECRETS if s in printed.out + printed.err]


def test_fixed_windows_labelled_by_record_store_no_record_name_and_audit_takes_the_labels(tmp_path, capsys):
    """Seen: predict stored ``--labels``' record names (file names) in predictions.sqlite; audit
    refused ``--labels`` for fixed windows with "an npz data set carries its own labels"."""
    from tests.app.kinds_data import write_beats_record

    folder = tmp_path / "ecg"
    folder.mkdir()
    names = ["DOE_JOHN_MRN8472913", *(f"PT_{k}" for k in range(7))]
    for name in names:
        write_beats_record(folder, name=name, seconds=8.0)
    labels = tmp_path / "labels.csv"
    labels.write_text("record,label\n" + "".join(f"{n},{'ab'[k % 2]}\n" for k, n in enumerate(names)))
    model = tmp_path / "m.pt"
    assert main(["train", "--data", str(folder), "--windows", "fixed", "--length", "2", "--labels", str(labels),
                 "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    for command in (["predict"], ["audit", "--methods", "gradient", "--cluster-method", "gradient", "--limit", "8",
                                  "--metric-option", "deletion_auc.steps=4", "--metric-option", "insertion_auc.steps=4"]):
        out = tmp_path / command[0]
        assert main([command[0], "--model", str(model), "--data", str(folder), "--labels", str(labels), *command[1:],
                     "--quiet", "--out", str(out)]) == 0, capsys.readouterr().err
        assert _leaks(out) == {}


def test_predict_names_notes_by_the_files_ids_when_asked(notes, tmp_path):
    path, model = notes
    out = tmp_path / "out"
    args = ["predict", "--model", str(model), "--data", str(path), "--quiet", "--out", str(out)]
    assert main([*args, "--show-identifiers"]) == 0
    assert f"\n{MRN}00," in (out / "predictions.csv").read_text()
    assert main(args) == 2  # the same folder named by ids is another run: refused, not mixed
