"""``medlens attention`` on the model's own notes file tests the notes it was not trained on.

Seen: ``medlens attention --model m.pt --data mtsamples.csv`` (the training file; ``--split test`` by
default) analysed the file's first notes, most of them training notes: accuracy 0.844 on them
against 0.733 on the held-out notes. A notes file was read whole, whatever ``--split`` said.
"""

from __future__ import annotations

import csv
import json

import pytest

from medlens.app.attention import attention_analysis
from medlens.cli import main
from tests.notes_files import write_notes
from medlens.errors import InputError
from medlens.models import load_model


def test_attention_leaves_out_the_training_notes(tmp_path):
    notes, model = tmp_path / "notes.csv", tmp_path / "m.pt"
    write_notes(notes, [(f"kidney stone case {i}" if i % 2 else f"hernia mesh case {i}", "urology" if i % 2 else "surgery")
                        for i in range(20)])
    assert main(["train", "--data", str(notes), "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    meta = load_model(str(model))[1]
    meta_cases = meta["cases"]
    out = tmp_path / "att"
    assert main(["attention", "--model", str(model), "--data", str(notes), "--permutations", "2", "--ig-steps", "0",
                 "--examples", "0", "--out", str(out), "--quiet"]) == 0
    result = json.loads((out / "attention.json").read_text())
    held_out = meta_cases["val"] + meta_cases["test"]
    assert result["summary"]["n_sequences"] == held_out
    assert result["data"] == f"{held_out} notes not trained on ({meta_cases['train']} training notes of the file left out)"
    training_only = tmp_path / "train_only.csv"
    rows = list(csv.reader(open(notes, newline="", encoding="utf-8")))
    positions = meta["split_positions"]["train"]
    with open(training_only, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([rows[0], *(rows[1 + i] for i in positions)])
    with pytest.raises(InputError, match="every note of .* was in the model's training split"):
        attention_analysis(model=str(model), data=str(training_only), out=str(tmp_path / "none"), permutations=2)
