"""A text model says when a note is unlike its training notes (most of its words unknown to it), in
predict, explain and report, and does not say it of notes written like the training notes.

Seen: a notes model given notes in German, Spanish or Chinese (54-73% of their words unknown to it;
the MTSamples held-out notes: at most 12%) predicted and explained them with no warning: a text
model stored no familiarity reference, and predict ran the familiarity check on scans only.
"""

from __future__ import annotations

import csv
import json

from medlens.cli import main
from tests.notes_files import write_notes

GERMAN = "Der Patient klagt über Schmerzen im Unterbauch seit drei Tagen, Nierenstein links, Kontrolle in einer Woche."


def test_a_note_in_another_language_is_unlike_the_training_notes_and_a_familiar_one_is_not(tmp_path, capsys):
    notes, model = tmp_path / "notes.csv", tmp_path / "notes.pt"
    write_notes(notes, [["kidney stone and hematuria, cystoscopy of the bladder" if i % 2 else
                    "hernia repair with mesh, laparoscopic and the patient tolerated it",
                    "urology" if i % 2 else "surgery"] for i in range(16)])
    assert main(["train", "--data", str(notes), "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    new = tmp_path / "new.csv"
    write_notes(new, [["cystoscopy of the bladder, kidney stone and hematuria", "urology"], [GERMAN, "urology"]])
    capsys.readouterr()
    assert main(["predict", "--model", str(model), "--data", str(new), "--out", str(tmp_path / "p"), "--quiet"]) == 0
    assert "1 of the 2 predicted cases (50%) are unlike the model's training data" in capsys.readouterr().out
    rows = list(csv.DictReader(open(tmp_path / "p" / "familiarity.csv", encoding="utf-8")))
    assert [r["unlike_training_data"] for r in rows] == ["0", "1"]
    assert main(["explain", "--model", str(model), "--input", str(new), "--method", "grad_x_input",
                 "--out", str(tmp_path / "e"), "--quiet"]) == 0
    codes = [[w.get("code") for w in json.loads((tmp_path / "e" / f"note-{k}" / "summary.json").read_text())["warnings"]]
             for k in (1, 2)]
    assert "unlike_training" not in codes[0] and "unlike_training" in codes[1]
    out = tmp_path / "r"
    assert main(["report", "--model", str(model), "--input", str(new), "--index", "1", "--out", str(out), "--quiet"]) == 0
    assert json.loads((out / "case.json").read_text())["familiarity"]["unlike_training_data"] is True
    assert "unlike the notes the model was trained on" in (out / "report.html").read_text()
