"""Notes exported by spreadsheets: UTF-16 with a byte-order mark (Excel's "Unicode text") is read,
and a file separated by semicolons (a European Excel CSV) is named as such.

Seen: a UTF-16 TSV was refused as "not UTF-8 text (byte 0: b'\\xff'); save it as UTF-8 (for example:
iconv -f latin1 -t utf-8)", advice that garbles it; a ';'-separated CSV got "has no text column
'text'; its columns are 'text;label'" with no word of the separator.
"""

from __future__ import annotations

import pytest

from medlens.data.formats.text import read_notes
from medlens.errors import FileFormatError


def test_a_utf16_tsv_with_its_mark_is_read(tmp_path):
    path = tmp_path / "notes.tsv"
    path.write_bytes("text\tlabel\nrein calculé, hématurie\turology\nhernia mesh\tsurgery\n".encode("utf-16"))
    notes = read_notes(path)
    assert notes.texts == ("rein calculé, hématurie", "hernia mesh") and notes.labels == ("urology", "surgery")


def test_a_semicolon_separated_csv_is_named(tmp_path):
    path = tmp_path / "notes.csv"
    path.write_text("text;label\nkidney stone;urology\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"separated by ';'"):
        read_notes(path)


def test_a_json_list_as_a_note_is_refused_naming_its_line(tmp_path):
    """Seen: ``{"text": ["kidney", "stone"], ...}`` was read as the note "['kidney', 'stone']"."""
    path = tmp_path / "notes.jsonl"
    path.write_text('{"text": "hernia mesh", "label": "surgery", "codes": ["K40"]}\n'
                    '{"text": ["kidney", "stone"], "label": "urology"}\n', encoding="utf-8")
    with pytest.raises(FileFormatError, match=r"line 2: 'text' holds a JSON list, not text"):
        read_notes(path)
    path.write_text('{"text": "hernia mesh", "label": "surgery", "codes": ["K40"]}\n', encoding="utf-8")
    assert read_notes(path).texts == ("hernia mesh",)  # a list in a column not read is left alone
