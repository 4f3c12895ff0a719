"""Hostile inputs through the command line: decode bombs, link loops, paths that leave the data,
an ``--out`` that is a file, and file names that identify a patient.

Each acceptance criterion of issue 21 is one test here: one line and exit 2 for a bad input
(peak memory measured in a subprocess), exit 3 when some cases of a folder fail, each real file
one case whatever links the folder holds, labels-file paths confined, ``--out`` refused before
any work, and no file name, folder name or UID in any output but ``identifiers.csv``.
"""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medlens.cli import build_parser, main
from tests.data import hostile_files as H
from tests.data.identified_dicom import write_identified_dicom, write_identified_series

ROOT = Path(__file__).resolve().parents[2]
AUDIT = ["--methods", "gradient", "--cluster-method", "gradient", "--metric-option", "deletion_auc.steps=4",
         "--metric-option", "insertion_auc.steps=4", "--cases-per-batch", "2", "--quiet"]
ONE_GB_KB = 2**20  # ru_maxrss is in KB on Linux


@pytest.fixture(scope="module")
def model(tiny_scan_model) -> Path:
    return tiny_scan_model


@pytest.fixture(scope="module")
def bombs(tmp_path_factory) -> dict[str, Path]:
    """The issue's two bombs, made the same way: a 5 KB PNG declaring 100000 x 100000 pixels and
    an 18 MB deflated DICOM of 65535 x 65535 zeros (4 GB inflated)."""
    folder = tmp_path_factory.mktemp("bombs")
    return {"png": H.png_bomb(folder / "bomb.png"), "dicom": H.deflated_dicom_bomb(folder / "bomb.dcm")}


def _picture(path: Path, seed: int, shape=(40, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.random.default_rng(seed).random(shape) * 255).astype(np.uint8)).save(path)
    return path


def _medlens_peak(args: list[str], tmp_path: Path) -> tuple[int, str, str, int]:
    """Run ``python -m medlens ARGS`` in a child of a small wrapper; returns the exit code,
    stdout, stderr and the child's peak resident memory (KB)."""
    wrapper = textwrap.dedent("""
        import json, resource, subprocess, sys
        done = subprocess.run([sys.executable, "-m", "medlens", *sys.argv[1:]], capture_output=True, text=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        print(json.dumps([done.returncode, done.stdout, done.stderr, peak]))
    """)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("MEDLENS_MEMORY_MB", None)
    done = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    code, out, err, peak = json.loads(done.stdout.strip().splitlines()[-1])
    return code, out, err, peak


@pytest.mark.parametrize("kind", ["png", "dicom"])
def test_a_bomb_is_refused_in_one_line_exit_2_under_one_gigabyte(bombs, model, tmp_path, kind):
    out = tmp_path / "out"
    code, stdout, stderr, peak_kb = _medlens_peak(
        ["explain", "--model", str(model), "--input", str(bombs[kind]), "--out", str(out), "--quiet"], tmp_path)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1, stderr
    assert lines[0].startswith("medlens: error:") and "decoding limit" in lines[0] and "--memory-mb" in lines[0]
    assert "Traceback" not in stderr + stdout
    assert peak_kb < ONE_GB_KB, f"peak {peak_kb / 1024:.0f} MB"
    assert not out.exists()


def test_bombs_in_a_folder_are_listed_the_others_explained_and_audited_exit_3(bombs, model, tmp_path, capsys):
    scans = tmp_path / "scans"
    for k in range(2):
        _picture(scans / f"good{k}.png", k)
    for path in bombs.values():
        shutil.copy(path, scans / path.name)
    out = tmp_path / "explained"
    code, _, err, peak_kb = _medlens_peak(["explain", "--model", str(model), "--input", str(scans), "--method",
                                           "gradient", "--quiet", "--out", str(out)], tmp_path)
    assert code == 3 and peak_kb < ONE_GB_KB, (code, err, f"peak {peak_kb / 1024:.0f} MB")
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["error", "error", "ok", "ok"]  # bomb.dcm, bomb.png, good0, good1
    assert all("decoding limit" in r["error"] for r in rows[:2])
    assert err.count(" failed: ") == 2 and "2 case(s) failed" in err and "Traceback" not in err
    assert all((out / r["output"] / "attribution.npy").is_file() for r in rows[2:])

    audited = tmp_path / "audited"
    assert main(["audit", "--model", str(model), "--data", str(scans), "--out", str(audited), *AUDIT]) == 3
    assert len(list(csv.DictReader((audited / "cases.csv").open()))) == 2
    unreadable = list(csv.DictReader((audited / "unreadable.csv").open()))
    assert len(unreadable) == 2 and all("decoding limit" in u["error"] for u in unreadable)


def test_a_corrupt_dicom_header_in_a_folder_is_one_failed_case_not_a_bug(model, tmp_path, capsys):
    """Seen on pydicom's badVR.dcm: the series grouping of the folder walk read NumberOfFrames "1A"
    outside any reader and the whole audit ended as an internal error."""
    scans = tmp_path / "scans"
    for k in range(2):
        _picture(scans / f"good{k}.png", k)
    H.corrupt_header_dicom(scans / "bad.dcm")
    assert main(["explain", "--model", str(model), "--input", str(scans), "--quiet", "--out",
                 str(tmp_path / "explained")]) == 3
    rows = list(csv.DictReader((tmp_path / "explained" / "summary.csv").open()))
    assert [r["status"] for r in rows] == ["error", "ok", "ok"] and "corrupt" in rows[0]["error"]
    assert main(["audit", "--model", str(model), "--data", str(scans), "--out", str(tmp_path / "audited"), *AUDIT]) == 3
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err


def test_the_memory_budget_reaches_the_readers(model, tmp_path, capsys):
    picture = _picture(tmp_path / "big.png", 0, shape=(1000, 1000))  # 1 MB of pixels
    assert main(["explain", "--model", str(model), "--input", str(picture), "--memory-mb", "0.5",
                 "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "decoding limit of 0.5 MB" in capsys.readouterr().err
    assert main(["explain", "--model", str(model), "--input", str(picture), "--memory-mb", "64",
                 "--out", str(tmp_path / "o"), "--quiet"]) == 0


def _looping_folder(tmp_path: Path) -> Path:
    """Two real pictures, a link back to the root (a loop), a second name for one picture, a
    link to a folder outside and a link to a file outside, and a dangling link."""
    scans = tmp_path / "scans"
    _picture(scans / "a.png", 0)
    _picture(scans / "sub" / "b.png", 1)
    outside = _picture(tmp_path / "elsewhere" / "c.png", 2)
    (scans / "sub" / "back").symlink_to("..")
    (scans / "sub" / "deeper").symlink_to(scans / "sub")
    (scans / "alias.png").symlink_to("a.png")
    (scans / "out").symlink_to(outside.parent)
    (scans / "c.png").symlink_to(outside)
    (scans / "gone.png").symlink_to(tmp_path / "missing.png")
    return scans


def test_a_link_loop_gives_each_real_file_once_to_explain_and_audit(model, tmp_path, capsys):
    scans = _looping_folder(tmp_path)
    out = tmp_path / "explained"
    assert main(["explain", "--model", str(model), "--input", str(scans), "--method", "gradient", "--quiet",
                 "--show-identifiers", "--out", str(out)]) == 0
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [(r["case"], r["status"]) for r in rows] == [("a.png", "ok"), ("sub/b.png", "ok")]
    audited = tmp_path / "audited"
    assert main(["audit", "--model", str(model), "--data", str(scans), "--out", str(audited), *AUDIT]) == 0
    assert len(list(csv.DictReader((audited / "cases.csv").open()))) == 2
    assert not (audited / "unreadable.csv").exists()
    assert [r["file"] for r in csv.DictReader((audited / "identifiers.csv").open())] == ["a.png", "sub/b.png"]
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("mask", ["../../../../../../../../etc/passwd", "/etc/passwd", "../elsewhere/c.png",
                                  "escape.png"])
@pytest.mark.parametrize("command", ["audit", "evaluate"])
def test_a_mask_path_outside_the_data_is_refused_in_one_line(model, tmp_path, capsys, command, mask):
    scans = tmp_path / "study" / "scans"
    _picture(scans / "a.png", 0)
    _picture(tmp_path / "elsewhere" / "c.png", 3)
    (tmp_path / "study" / "escape.png").symlink_to(tmp_path / "elsewhere" / "c.png")  # a link that leaves
    labels = tmp_path / "study" / "labels.csv"
    labels.write_text(f"case,label,mask\na.png,1,{mask}\n")
    extra = AUDIT if command == "audit" else ["--methods", "gradient", "--metrics", "pointing_game", "--quiet"]
    code = main([command, "--model", str(model), "--data", str(scans), "--labels", str(labels),
                 "--out", str(tmp_path / "o"), *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "leads outside the data folder" in err and "--allow-outside" in err
    assert not (tmp_path / "o" / "cases.csv").exists()


def test_a_mask_beside_the_scans_and_allow_outside_are_accepted(model, tmp_path):
    scans = tmp_path / "study" / "scans"
    _picture(scans / "a.png", 0, shape=(24, 24))
    mask = tmp_path / "study" / "masks" / "a.png"
    mask.parent.mkdir()
    Image.fromarray(np.pad(np.full((4, 4), 255, np.uint8), 10)).save(mask)
    labels = tmp_path / "study" / "labels.csv"
    labels.write_text("case,label,mask\na.png,1,masks/a.png\n")
    assert main(["audit", "--model", str(model), "--data", str(scans), "--labels", str(labels),
                 "--out", str(tmp_path / "o"), *AUDIT]) == 0
    far = tmp_path / "far" / "labels.csv"
    far.parent.mkdir()
    far.write_text(f"case,label,mask\na.png,1,{mask}\n")  # outside both folders: only when permitted
    assert main(["audit", "--model", str(model), "--data", str(scans), "--labels", str(far),
                 "--out", str(tmp_path / "o2"), *AUDIT]) == 2
    assert main(["audit", "--model", str(model), "--data", str(scans), "--labels", str(far), "--allow-outside",
                 "--out", str(tmp_path / "o2"), *AUDIT]) == 0


def _folder_commands() -> list[tuple[str, list[str]]]:
    """Every command that writes a folder, with its required options filled with a missing file."""
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    found = []
    for name, p in sorted(sub.choices.items()):
        if not p.get_default("out_is_folder"):
            continue
        argv = []
        for action in p._actions:
            if action.required and action.option_strings and action.dest != "out":
                argv += [action.option_strings[0], "missing-input"]
            elif action.required and not action.option_strings:
                argv += [action.choices[0] if action.choices else "missing-input"]
        found.append((name, argv))
    return found


def test_every_folder_command_refuses_an_out_that_is_a_file_before_any_work(tmp_path, capsys):
    existing = tmp_path / "results.txt"
    existing.write_text("keep me")
    commands = _folder_commands()
    assert {"explain", "audit", "evaluate", "report", "attention", "basis", "concepts", "featurevis", "demo",
            "imaging-report"} <= {name for name, _ in commands}
    for name, argv in commands:
        # the inputs do not exist: a refusal that names --out came before reading any of them
        assert main([name, *argv, "--out", str(existing)]) == 2, name
        err = capsys.readouterr().err.strip()
        assert "--out" in err and "existing file" in err and "\n" not in err, (name, err)
    assert existing.read_text() == "keep me"
    assert [p.name for p in tmp_path.iterdir()] == ["results.txt"]


def test_an_internal_error_is_one_line_naming_a_bug_and_debug_shows_the_traceback(model, tmp_path, capsys,
                                                                                   monkeypatch):
    import medlens.app.explain_file as use_case

    def broken(*args, **kwargs):
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(use_case, "explain_case", broken)
    picture = _picture(tmp_path / "a.png", 0)
    argv = ["explain", "--model", str(model), "--input", str(picture), "--out", str(tmp_path / "o"), "--quiet"]
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "internal error" in err and "--debug" in err and "MEDLENS_DEBUG=1" in err
    with pytest.raises(ZeroDivisionError):
        main([*argv, "--debug"])
    monkeypatch.setenv("MEDLENS_DEBUG", "1")
    with pytest.raises(ZeroDivisionError):
        main(argv)
    assert not list(tmp_path.glob(".o.partial-*"))


# --------------------------------------------------------------------------------------------
# Identifiers: no file name, folder name or UID in any output but identifiers.csv
# --------------------------------------------------------------------------------------------

NIH_NAMES = ("00000013_005.png", "00000013_006.png", "00000042_000.png")


def _identified_folder(tmp_path: Path) -> tuple[Path, set[str]]:
    """A folder named like a patient, holding NIH-named PNGs, a single DICOM file named by its SOP
    Instance UID and a CT series (files named by UID) in a folder named by its series UID; returns
    the folder and every identifying string (names, stems, UIDs, patient values)."""
    import pydicom

    scans = tmp_path / "Doe^Jane_MRN4711"
    for k, name in enumerate(NIH_NAMES):
        _picture(scans / name, k)
    secrets = {scans.name, *NIH_NAMES, *(Path(n).stem for n in NIH_NAMES)}
    single = tmp_path / "single.dcm"
    values = write_identified_dicom(single)
    uid = str(pydicom.dcmread(single).SOPInstanceUID)
    shutil.move(single, scans / f"{uid}.dcm")
    series_uid = "1.2.826.0.1.3680043.9.4242.1"
    series = scans / series_uid
    values.update(write_identified_series(series, slices=6, size=24))
    for path in series.iterdir():
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID = series_uid
        ds.save_as(path)
        secrets |= {path.name, path.stem}
    secrets |= {f"{uid}.dcm", uid, series_uid}
    secrets |= {v for v in values.values() if len(v) >= 8 and not v.isdigit()}  # patient names, UIDs, tokens
    return scans, secrets


def _leaks(folder: Path, secrets: set[str]) -> dict[str, list[str]]:
    """``{output file: identifying strings found in it}`` over every file under ``folder`` (gzip
    members decompressed; SQLite, Parquet, NumPy and PNG searched as bytes) but identifiers.csv,
    and over every path name under it."""
    found: dict[str, list[str]] = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        hits = [s for s in secrets if s in rel]
        if path.is_file() and path.name != "identifiers.csv":
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
            hits += [s for s in secrets if s.encode() in data or s.encode("utf-16-le") in data]
        if hits:
            found[rel] = sorted(set(hits))
    return found


def test_no_output_of_audit_or_folder_explain_names_a_file_a_folder_or_a_uid(model, tmp_path, capsys):
    scans, secrets = _identified_folder(tmp_path)
    explained, audited = tmp_path / "explained", tmp_path / "audited"
    assert main(["explain", "--model", str(model), "--input", str(scans), "--method", "gradient", "--slice", "0",
                 "--out", str(explained)]) == 0
    assert main(["audit", "--model", str(model), "--data", str(scans), "--out", str(audited), "--slice", "0",
                 *[a for a in AUDIT if a != "--quiet"]]) == 0
    printed = capsys.readouterr()
    assert {"cases.csv", "cases.parquet", "clusters.csv", "audit.html", "audit.sqlite"} <= {
        p.name for p in audited.iterdir()}
    assert not [s for s in secrets if s in printed.out + printed.err]
    assert _leaks(explained, secrets) == {} and _leaks(audited, secrets) == {}
    # the one file that names them: every case, the same ids in both outputs
    for folder in (explained, audited):
        rows = list(csv.DictReader((folder / "identifiers.csv").open()))
        assert set(NIH_NAMES) <= {r["file"] for r in rows} and len(rows) == 5
    ids = [r["case"] for r in csv.DictReader((explained / "identifiers.csv").open())]
    assert ids == [r["case"] for r in csv.DictReader((audited / "identifiers.csv").open())]
    assert sorted(p.name for p in explained.iterdir() if p.is_dir()) == ids


def test_show_identifiers_names_the_cases_inline_everywhere(model, tmp_path):
    scans, secrets = _identified_folder(tmp_path)
    explained, audited = tmp_path / "explained", tmp_path / "audited"
    assert main(["explain", "--model", str(model), "--input", str(scans), "--method", "gradient", "--quiet", "--slice", "0",
                 "--show-identifiers", "--out", str(explained)]) == 0
    assert main(["audit", "--model", str(model), "--data", str(scans), "--out", str(audited), "--slice", "0",
                 "--show-identifiers", *AUDIT]) == 0
    for name in NIH_NAMES:
        assert (explained / name / "summary.json").is_file()
        assert name in (explained / "summary.csv").read_text() and name in (audited / "cases.csv").read_text()
        assert name in (audited / "clusters.csv").read_text()
    assert _leaks(explained, secrets) and _leaks(audited, secrets)  # the search finds names where they are


def test_a_truncated_edf_is_one_line_with_no_library_print_in_front(model, tmp_path, capfd):
    edf = H.write_edf(tmp_path / "rec.edf")
    data = edf.read_bytes()
    edf.write_bytes(data[: len(data) - 37])  # pyedflib prints "filesize ... != ..." on stdout, from C
    assert main(["explain", "--model", str(model), "--input", str(edf), "--out", str(tmp_path / "o")]) == 2
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("medlens: error:") and captured.err.count("\n") == 1


def test_a_series_error_names_its_files_by_position_not_by_name(model, tmp_path, capsys):
    """Seen on pydicom's MR_small.dcm beside MR_small_RLE.dcm (the same slice twice): the withheld
    message read "case-0001 and case-0001 in case-0001 lie at the same slice position"."""
    import pydicom

    scans = tmp_path / "scans"
    _picture(scans / "a.png", 0)
    series = scans / "ct"
    write_identified_series(series, slices=3, size=16)
    files = sorted(series.glob("*.dcm"))
    twin = pydicom.dcmread(files[0])
    twin.SOPInstanceUID = twin.file_meta.MediaStorageSOPInstanceUID = "1.2.826.0.1.3680043.9.7.99"
    twin.save_as(series / "1.2.826.0.1.3680043.9.7.99.dcm", enforce_file_format=True)
    assert main(["explain", "--model", str(model), "--input", str(scans), "--quiet", "--slice", "0",
                 "--out", str(tmp_path / "out")]) == 3
    err = capsys.readouterr().err
    line = next(x for x in err.splitlines() if "same slice position" in x)
    assert "case-0001 file 1 and case-0001 file 4 in case-0001 lie at the same slice position" in line, line
    assert "1.2.826" not in err
