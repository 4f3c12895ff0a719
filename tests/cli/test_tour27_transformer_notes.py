"""A transformer trained on notes and explained through the CLI, as the BiGRU is (tour 27)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from medlens.cli import main
from tests.notes_files import write_notes

SECRET = "Zebulon Quarrington"


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tour27")
    rows = []
    for i in range(16):
        if i % 2:
            rows.append((f"note {i}: kidney stone seen in the ureter, urology follow up with cystoscopy", "urology"))
        else:
            rows.append((f"note {i}: laparoscopic incision closed, surgery went well and the wound is clean", "surgery"))
    data = write_notes(folder / "notes.csv", rows)
    model = folder / "tf.pt"
    assert main(["train", "--data", str(data), "--arch", "transformer", "--epochs", "1", "--quiet",
                 "--out", str(model)]) == 0
    note = write_notes(folder / "one.csv", [(f"Patient {SECRET}, MRN 55501234: kidney stone in the ureter", "urology")])
    return model, note


def test_a_transformer_note_is_explained_by_rollout_with_identifiers_hidden(trained, tmp_path):
    model, note = trained
    out = tmp_path / "ex"
    assert main(["explain", "--model", str(model), "--input", str(note), "--method", "attention_rollout",
                 "--quiet", "--out", str(out)]) == 0
    with open(out / "tokens.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    values = [float(r["attention_rollout"]) for r in rows]
    assert len(rows) > 5 and all(v >= 0 for v in values) and sum(values) == pytest.approx(1, abs=1e-4)
    for path in out.rglob("*"):
        if path.is_file() and path.name != "identifiers.csv":
            data = path.read_bytes()
            assert b"Quarrington" not in data and b"55501234" not in data, path


def test_the_attention_tests_rank_a_transformers_rollout(trained, tmp_path):
    model, note = trained
    out = tmp_path / "att"
    assert main(["attention", "--model", str(model), "--data", str(note), "--permutations", "2", "--ig-steps", "2",
                 "--quiet", "--out", str(out)]) == 0
    summary = json.loads((out / "attention.json").read_text())
    numbers = summary.get("summary", summary)
    assert -1 <= numbers["tau_rollout_leave_one_out_mean"] <= 1
    assert "rollout" in (out / "verdict.txt").read_text()
