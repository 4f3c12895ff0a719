"""``train`` says when notes are copies of one another: with different labels, or across splits.

Seen: the MTSamples export holds 11 transcriptions twice, once as 'Surgery' and once as 'Urology'
(rows 2 and 176 ...); train said nothing, and 6 of those pairs were split between training and
validation/test, so the held-out scores counted notes the model had trained on, under the other label.
"""

from __future__ import annotations


from medlens.cli import main
from tests.notes_files import write_notes


def test_train_names_copied_notes_and_their_clashing_labels(tmp_path, capsys):
    notes = tmp_path / "notes.csv"
    write_notes(notes, [*((f"kidney stone number {i}" if i % 2 else f"hernia mesh number {i}",
                           "urology" if i % 2 else "surgery") for i in range(20)),
                        ("CYSTOSCOPY:  bladder  stones removed.", "urology"),
                        ("cystoscopy: bladder stones removed.", "surgery")])  # the same note, other label
    assert main(["train", "--data", str(notes), "--epochs", "1", "--out", str(tmp_path / "m.pt"), "--quiet"]) == 0
    line = next(line for line in capsys.readouterr().err.splitlines() if "copies" in line)
    assert line.startswith("warning: 2 notes are copies of another (1 distinct text, e.g. rows 22, 23): "
                           "1 with different labels")
