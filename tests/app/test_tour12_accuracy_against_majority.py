"""``train``'s summary gives each split's accuracy beside the accuracy of always answering its most
frequent class, so that a test accuracy is not read alone.

Seen: MTSamples urology vs surgery: "val accuracy 0.533 AUROC 0.617; test accuracy 0.733 AUROC 0.859";
always answering the most frequent class scores 0.600 on validation (the model is below it) and
0.533 on test (the model is above it): printed alone, neither accuracy can be read.
"""

from __future__ import annotations

import re

from medlens.cli import main
from tests.notes_files import write_notes


def test_train_prints_each_accuracy_beside_the_majority_share(tmp_path, capsys):
    notes = tmp_path / "notes.csv"
    write_notes(notes, [("kidney stone" if i % 4 else "hernia mesh", "urology" if i % 4 else "surgery") for i in range(20)])
    assert main(["train", "--data", str(notes), "--epochs", "1", "--out", str(tmp_path / "m.pt")]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("trained"))
    assert re.search(r"val accuracy [\d.]+ \(most frequent class [\d.]+\) AUROC [\d.]+; "
                     r"test accuracy [\d.]+ \(most frequent class [\d.]+\) AUROC", line), line
