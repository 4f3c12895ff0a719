"""A notes CSV that ends inside a quoted note (a download cut off mid-note) is refused in one line.

Seen: the MTSamples export (322 transcriptions, 1008 KiB) stops in the middle of the last note;
pandas refuses it ("EOF inside string starting at row 322") but ``medlens train`` read it silently,
the last note cut short and its row missing the ``keywords`` column.
"""

from __future__ import annotations

import csv

import pytest

from medlens.data.formats.text import read_notes
from medlens.errors import FileFormatError


def _write(path, cut: bool):
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["", "medical_specialty", "transcription", "keywords"])
        writer.writerow(["0", " Urology", "CYSTOSCOPY:, The bladder was inspected, \"trabeculated\".", "bladder"])
        writer.writerow(["1", " Surgery", "PROCEDURE:, Laparoscopic hernia repair, mesh placed.", "hernia, mesh"])
    if cut:
        text = path.read_text(encoding="utf-8")
        path.write_text(text[: text.index("mesh placed")], encoding="utf-8")


def test_a_csv_cut_off_inside_a_note_is_refused_naming_the_row(tmp_path):
    whole, cut = tmp_path / "whole.csv", tmp_path / "cut.csv"
    _write(whole, cut=False)
    _write(cut, cut=True)
    notes = read_notes(whole, text_column="transcription", label_column="medical_specialty")
    assert notes.labels == ("Urology", "Surgery") and "trabeculated" in notes.texts[0]
    with pytest.raises(FileFormatError, match=r"ends inside a quoted field of row 3 .*cut off"):
        read_notes(cut, text_column="transcription", label_column="medical_specialty")


def test_a_stray_quote_inside_an_unquoted_field_is_still_read(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text('text,label\n"kidney" stone seen,urology\nhernia,surgery\n', encoding="utf-8")
    assert len(read_notes(path)) == 2
