"""``explain`` on a folder or notes file counts the cases unlike the training data without the
model's own warning, and prints that warning once.

Seen: ``medlens explain --model notes.pt --input notes.csv`` with a model no better than chance said
"warning: 5 case(s) unlike the training data or seen at a fraction of their resolution" of five
notes, one of them written like the training notes: every case carried the model's "chance"
warning, and it was counted as a case's.
"""

from __future__ import annotations


from medlens.cli import main
from tests.notes_files import write_notes


def test_the_chance_warning_is_not_counted_as_unlike_cases(tmp_path, capsys):
    notes, model, new = tmp_path / "notes.csv", tmp_path / "m.pt", tmp_path / "new.csv"
    write_notes(notes, [["kidney stone and hematuria, hernia repair with mesh", "urology" if i % 3 else "surgery"]
                   for i in range(18)])  # one text for both classes: the model cannot beat the majority class
    assert main(["train", "--data", str(notes), "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    write_notes(new, [["hernia repair with mesh", "surgery"], ["kidney stone and hematuria", "urology"]])
    capsys.readouterr()
    assert main(["explain", "--model", str(model), "--input", str(new), "--method", "grad_x_input",
                 "--out", str(tmp_path / "e")]) == 0
    out = capsys.readouterr().out
    assert "unlike the training data" not in out
    assert out.count("warning (chance): The model is no better than always answering") == 1
