"""The note report's most similar notes are other patients' notes: their text stays out by default.

Seen: ``medlens report --model notes.pt --input note.txt --basis-data notes.csv`` printed the
start of each similar training note, with "Name: [**Known lastname 1234**], MRN [**MRN 5678**]"
in it, although the audit of the same notes writes no note text unless ``--show-identifiers``.
"""

from __future__ import annotations

import csv
import json

from medlens.cli import main


def _notes(path):
    rows = []
    for i in range(24):
        heart = i % 2 == 1
        text = ("Dyspnoea, bilateral effusions, cardiomegaly; diuresed." if heart else "Appendicitis; laparoscopic appendectomy.")
        rows.append({"case": f"n{i:03d}", "text": f"{text} Name: Zelda Quixote{i:02d}, MRN 55{i:03d}.",
                     "label": "heart failure" if heart else "other"})
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["case", "text", "label"])
        writer.writeheader()
        writer.writerows(rows)


def test_similar_notes_show_labels_only_unless_identifiers_are_asked_for(tmp_path):
    notes, note, model = tmp_path / "notes.csv", tmp_path / "note.txt", tmp_path / "notes.pt"
    _notes(notes)
    note.write_text("Dyspnoea and cardiomegaly; diuresed.", encoding="utf-8")
    assert main(["train", "--data", str(notes), "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    hidden, shown = tmp_path / "hidden", tmp_path / "shown"
    assert main(["report", "--model", str(model), "--input", str(note), "--basis-data", str(notes), "--k", "3",
                 "--out", str(hidden), "--quiet"]) == 0
    page = (hidden / "report.html").read_text()
    assert "Zelda" not in page and "MRN 55" not in page and "Quixote" not in page
    assert "withheld" in page and "cardiomegaly" in page  # the reported note itself is shown
    assert len(json.loads((hidden / "case.json").read_text())["similar"]) == 3
    assert main(["report", "--model", str(model), "--input", str(note), "--basis-data", str(notes), "--k", "3",
                 "--show-identifiers", "--out", str(shown), "--quiet"]) == 0
    assert "Zelda Quixote" in (shown / "report.html").read_text()
