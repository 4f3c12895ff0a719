"""``medlens explain`` on a notes file: each note's ``input_note`` said the whole file's truncation
("2 of 3 notes were truncated ... 9 tokens dropped in all"), not that note's (tour 33). Now a
truncated note says how many of its own tokens were dropped, and a whole note says nothing."""

from __future__ import annotations

import json

from medlens.cli import main
from tests.notes_files import write_notes


def test_each_explained_note_says_its_own_truncation(tmp_path):
    notes, model = tmp_path / "notes.csv", tmp_path / "notes.pt"
    write_notes(notes, [("kidney stone hematuria" if i % 2 else "hernia repair mesh", "urology" if i % 2 else "surgery")
                        for i in range(8)])
    assert main(["train", "--data", str(notes), "--epochs", "1", "--max-length", "4", "--out", str(model), "--quiet"]) == 0
    explained = tmp_path / "explained.csv"
    write_notes(explained, [("kidney stone hematuria kidney stone hematuria", "urology"),  # 6 tokens: 2 dropped
                            ("hernia", "surgery"),
                            ("hernia repair mesh hernia repair mesh hernia repair", "surgery")])  # 8 tokens: 4 dropped
    out = tmp_path / "out"
    assert main(["explain", "--model", str(model), "--input", str(explained), "--method", "gradient",
                 "--out", str(out), "--quiet"]) == 0
    said = [json.loads((out / f"note-{k}" / "summary.json").read_text())["input_note"] for k in (1, 2, 3)]
    assert "2 of its 6 tokens dropped" in said[0] and "truncated to 4 tokens" in said[0]
    assert said[1] == ""
    assert "4 of its 8 tokens dropped" in said[2]
