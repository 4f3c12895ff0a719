"""``train`` names the classes a split lacks, and how often balanced sampling repeats a rare class.

Seen: MTSamples with ``--label-column medical_specialty`` has four specialties of one note each;
train said nothing of them, and balanced sampling drew each of those single training notes about
28 times an epoch, so the model answered 'Dentistry' or 'Neurology' (one training note each) for
126 of 221 training notes and was right on none of the 48 validation notes.
"""

from __future__ import annotations

import csv

from medlens.cli import main


def test_train_names_a_class_of_one_note_and_its_repeats(tmp_path, capsys):
    notes = tmp_path / "notes.csv"
    with open(notes, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["", "medical_specialty", "transcription"])
        for i in range(20):
            writer.writerow([i, " Urology" if i % 2 else " Surgery", "kidney stone" if i % 2 else "hernia mesh"])
        writer.writerow([20, " Dentistry", "tooth extraction under local anaesthesia"])
    assert main(["train", "--data", str(notes), "--text-column", "transcription", "--label-column",
                 "medical_specialty", "--epochs", "1", "--out", str(tmp_path / "m.pt"), "--quiet"]) == 0
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if "missing from" in line)
    assert line.startswith("warning: 1 of 3 classes are missing") and "'Dentistry' (" in line
    assert "'Urology'" not in line and "'Surgery'" not in line
    assert "drawn about" in line or "'Dentistry' (0/" in line  # in training: repeated; else never learnt
