"""``medlens generate head-ct`` writes phantoms that medlens's own readers read back in HU."""

from __future__ import annotations

import csv

from medlens.cli import main
from medlens.data.formats.read import read


def test_generate_head_ct_dicom(tmp_path, capsys):
    out = tmp_path / "ct"
    assert main(["generate", "head-ct", "--out", str(out), "--phantoms", "2", "--format", "dicom", "--seed", "2"]) == 0
    rows = list(csv.DictReader(open(out / "labels.csv", encoding="utf-8")))
    assert len(rows) == 2 and all((out / r["image"]).is_dir() for r in rows)
    vol = read(out / rows[0]["image"])
    assert vol.metadata["Modality"] == "CT" and float(vol.array.min()) <= -1000 and float(vol.array.max()) > 700
    assert main(["generate", "head-ct", "--out", str(tmp_path / "bad"), "--phantoms", "0"]) == 2


def test_generated_folder_feeds_the_commands_that_read_scans(tmp_path):
    """images/ holds only scans (masks lie apart) and labels.csv names the cases as the folder walker does."""
    from medlens.data.formats.folders import read_labels, scan_cases

    out = tmp_path / "ct"
    for fmt in ("dicom", "nifti"):
        folder = out / fmt
        assert main(["generate", "head-ct", "--out", str(folder), "--phantoms", "3", "--format", fmt, "--quiet"]) == 0
        cases = scan_cases(folder / "images")
        rows = list(csv.DictReader(open(folder / "labels.csv", encoding="utf-8")))
        assert [c.name for c in cases] == [r["case"] for r in rows]
        assert read_labels(folder / "labels.csv", [c.name for c in cases]) == [int(r["label"]) for r in rows]
        assert all((folder / r["mask"]).is_file() for r in rows)
