"""``explain --limit N`` on a folder or a notes file, as every other command takes it; a note's
characters the font lacks are no warning on the command line.

Seen: ``medlens explain --model notes.pt --input notes.csv --limit 3`` -> "unrecognized arguments:
--limit 3" (the README: "Every command speaks one grammar: --limit N"); explaining a note with
Chinese words printed five "Glyph 24739 (...) missing from font(s) DejaVu Sans Mono" warnings.
"""

from __future__ import annotations

import csv
import warnings

from medlens.app.library_warnings import quiet_libraries
from medlens.cli import main
from tests.app.kinds_data import write_notes, write_scans


def test_explain_limit_on_a_folder_and_on_a_notes_file(tmp_path):
    write_scans(tmp_path / "scans", tmp_path / "labels.csv", n=12)
    write_notes(tmp_path / "notes.csv", n=24)
    scans, notes = tmp_path / "scans.pt", tmp_path / "notes.pt"
    assert main(["train", "--data", str(tmp_path / "scans"), "--labels", str(tmp_path / "labels.csv"), "--size", "16,16",
                 "--epochs", "1", "--out", str(scans), "--quiet"]) == 0
    assert main(["train", "--data", str(tmp_path / "notes.csv"), "--epochs", "1", "--out", str(notes), "--quiet"]) == 0
    assert main(["explain", "--model", str(scans), "--input", str(tmp_path / "scans"), "--limit", "2",
                 "--out", str(tmp_path / "a"), "--quiet"]) == 0
    rows = list(csv.DictReader((tmp_path / "a" / "summary.csv").open()))
    assert [r["case"] for r in rows] == ["case-0000", "case-0001"]
    assert main(["explain", "--model", str(notes), "--input", str(tmp_path / "notes.csv"), "--limit", "3",
                 "--method", "grad_x_input", "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "b").iterdir() if p.is_dir()) == ["note-1", "note-2", "note-3"]


def test_a_missing_glyph_is_no_warning_on_the_command_line():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_libraries(debug=False):
            warnings.warn_explicit("Glyph 24739 (\\N{CJK UNIFIED IDEOGRAPH-60A3}) missing from font(s) DejaVu Sans Mono.",
                                   UserWarning, "notes.py", 10, module="medlens.viz.notes", registry={})
            warnings.warn_explicit("irregular slice spacing", UserWarning, "dicom.py", 10,
                                   module="medlens.data.formats.dicom", registry={})
    assert [str(w.message) for w in seen] == ["irregular slice spacing"]
