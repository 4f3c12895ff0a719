"""An empty note among many: skipped with its row named, not a refusal of the whole file.

Seen: a notes CSV of 40 notes with one empty ``text`` cell was refused by ``explain`` and ``audit``
("notes.csv: empty 'text' in row 5"), so one blank cell stopped every other note being explained.
Training still refuses it (training data must be clean), and a file of only empty notes is refused.
"""

from __future__ import annotations

import csv

import pytest

from medlens.cli import main
from medlens.data.formats.text import read_notes
from medlens.errors import InputError
from tests.audit.notes_data import train_notes_model, write_planted_notes


def _with_empty(path, rows, empty_at):
    """``rows`` written to ``path`` as a CSV (pandas-free, the csv module) with the notes at
    ``empty_at`` (0-based) blank: their file rows are ``i + 2``, the header being row 1."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows({**r, "text": "  " if i in empty_at else r["text"]} for i, r in enumerate(rows))


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("notes")
    write_planted_notes(folder / "train.csv", n=40, seed=0)
    return train_notes_model(folder / "train.csv", folder / "model.pt", epochs=2)


def test_read_notes_skips_empty_notes_only_when_asked_and_keeps_each_notes_row(tmp_path):
    rows = write_planted_notes(tmp_path / "all.csv", n=6)
    _with_empty(tmp_path / "n.csv", [{k: v for k, v in r.items() if k != "case"} for r in rows], {1, 4})
    with pytest.raises(InputError, match=r"empty 'text' in rows 3, 6$"):
        read_notes(tmp_path / "n.csv")
    notes = read_notes(tmp_path / "n.csv", skip_empty=True)
    assert notes.cases == ("2", "4", "5", "7") and notes.skipped == (3, 6)
    assert notes.texts == tuple(r["text"] for i, r in enumerate(rows) if i not in (1, 4))
    assert notes.skipped_statement() == "2 empty notes skipped (rows 3, 6 of the notes file)"
    _with_empty(tmp_path / "none.csv", rows[:2], {0, 1})
    with pytest.raises(InputError, match=r"empty 'text' in rows 2, 3 \(every note is empty\)"):
        read_notes(tmp_path / "none.csv", skip_empty=True)


def test_explain_skips_an_empty_note_and_says_which_row(model, tmp_path, capsys):
    rows = write_planted_notes(tmp_path / "all.csv", n=5, seed=1)
    _with_empty(tmp_path / "notes.csv", rows, {2})
    out = tmp_path / "out"
    assert main(["explain", "--model", model, "--input", str(tmp_path / "notes.csv"), "--method", "gradient",
                 "--out", str(out)]) == 0
    said = capsys.readouterr()
    assert "medlens: warning: 1 empty note skipped (row 4 of the notes file)\n" in said.err
    assert "note: 1 empty note skipped (row 4 of the notes file)\n" in said.out
    with open(out / "identifiers.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["note"] for r in rows] == ["MRN7000", "MRN7001", "MRN7003", "MRN7004"]
    assert [r["row"] for r in rows] == ["2", "3", "5", "6"]  # as the warning counts them: the empty note is row 4


def test_audit_skips_an_empty_note_and_states_it_in_the_report(model, tmp_path, capsys):
    rows = write_planted_notes(tmp_path / "all.csv", n=12, seed=2)
    _with_empty(tmp_path / "notes.csv", rows, {0, 7})
    out = tmp_path / "audit"
    assert main(["audit", "--model", model, "--data", str(tmp_path / "notes.csv"), "--out", str(out),
                 "--option", "integrated_gradients.n_steps=4", "--metric-option", "deletion_auc.steps=3",
                 "--metric-option", "insertion_auc.steps=3", "--quiet"]) == 0
    assert "medlens: warning: 2 empty notes skipped (rows 2, 9 of the notes file)\n" in capsys.readouterr().err
    assert "2 empty notes skipped (rows 2, 9 of the notes file)" in (out / "audit.html").read_text(encoding="utf-8")


def test_training_still_refuses_an_empty_note(tmp_path, capsys):
    rows = write_planted_notes(tmp_path / "all.csv", n=8)
    _with_empty(tmp_path / "train.csv", rows, {3})
    assert main(["train", "--data", str(tmp_path / "train.csv"), "--epochs", "1", "--out", str(tmp_path / "m.pt"),
                 "--quiet"]) != 0
    assert "empty 'text' in row 5" in capsys.readouterr().err
