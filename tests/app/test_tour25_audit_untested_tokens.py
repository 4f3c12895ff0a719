"""``medlens audit --tokens xxxx`` on notes without the placeholder (the README's example run on a
file de-identified otherwise, as MTSamples is) said nothing about ``xxxx``: the summary counted
"20 tokens tested (... and any named)" though the named token was in no note and never tested.
Now a sentence says which named tokens no audited note contains."""
from __future__ import annotations

from medlens.cli import main
from tests.audit.notes_data import PLANTED, train_notes_model, write_planted_notes

FAST = ["--option", "integrated_gradients.n_steps=4", "--metric-option", "deletion_auc.steps=4",
        "--metric-option", "insertion_auc.steps=4", "--top-tokens", "2", "--quiet"]


def test_a_named_token_in_no_note_is_said_to_be_untested(tmp_path, capsys):
    write_planted_notes(tmp_path / "train.csv", n=60, seed=0)
    write_planted_notes(tmp_path / "notes.csv", n=12, seed=1)
    model = train_notes_model(tmp_path / "train.csv", tmp_path / "model.pt", epochs=2)  # what it learns is not read
    notes = tmp_path / "notes.csv"  # the placeholder is in the training notes' vocabulary, not in these
    notes.write_text(notes.read_text(encoding="utf-8").replace("xxxx", "view"), encoding="utf-8")
    assert main(["audit", "--model", model, "--data", str(tmp_path / "notes.csv"), "--out", str(tmp_path / "a"),
                 "--tokens", f"xxxx,{PLANTED}", *FAST]) == 0
    said = capsys.readouterr().out
    assert "Not tested: 'xxxx' (named with --tokens) is in none of the 12 audited notes." in said
    assert f"'{PLANTED}' (named" not in said  # a named token the notes hold is tested, not listed
