"""``medlens generate head-ct`` writes phantoms that medlens's own readers read back in HU."""

from __future__ import annotations

import csv

from medlens.cli import main
from medlens.data.read import read


def test_generate_head_ct_dicom(tmp_path, capsys):
    out = tmp_path / "ct"
    assert main(["generate", "head-ct", "--out", str(out), "--phantoms", "2", "--format", "dicom", "--seed", "2"]) == 0
    rows = list(csv.DictReader(open(out / "labels.csv", encoding="utf-8")))
    assert len(rows) == 2 and all((out / r["image"]).is_dir() for r in rows)
    vol = read(out / rows[0]["image"])
    assert vol.metadata["Modality"] == "CT" and float(vol.array.min()) <= -1000 and float(vol.array.max()) > 700
    assert main(["generate", "head-ct", "--out", str(tmp_path / "bad"), "--phantoms", "0"]) == 2
