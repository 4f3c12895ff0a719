"""Notes for the text audit's tests, written by the tests themselves, and text models trained on them."""

from __future__ import annotations

import csv

import numpy as np

FILLER = ("the", "lungs", "are", "clear", "no", "acute", "findings", "stable", "chest", "xxxx", "view", "lateral",
          "pa", "and", "bony", "structures", "intact", "mediastinum", "within", "limits")
PLANTED = "zzq"


def write_planted_notes(path, n: int = 80, seed: int = 0) -> list[dict]:
    """Notes whose label is decided by one planted token: every "positive" note holds "zzq", no
    "negative" note does; the rest is random filler. Case ids look like record numbers."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        words = list(rng.choice(FILLER, size=int(rng.integers(6, 12))))
        positive = i % 2 == 1
        if positive:
            words.insert(int(rng.integers(0, len(words) + 1)), PLANTED)
        rows.append({"case": f"MRN{7000 + i}", "text": " ".join(words), "label": "positive" if positive else "negative"})
    _write(path, rows)
    return rows


def write_clean_notes(path, n: int = 80, seed: int = 0) -> list[dict]:
    """Notes whose label is told by finding words ("heart enlarged" vs "normal heart size"); "zzq"
    is in a random half of the notes of either class, so it tells nothing."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        words = list(rng.choice(FILLER, size=int(rng.integers(6, 12))))
        abnormal = i % 2 == 1
        finding = ["heart", "enlarged"] if abnormal else ["normal", "heart", "size"]
        at = int(rng.integers(0, len(words) + 1))
        words[at:at] = finding
        if rng.random() < 0.5:
            words.insert(int(rng.integers(0, len(words) + 1)), PLANTED)
        rows.append({"case": f"MRN{8000 + i}", "text": " ".join(words), "label": "abnormal" if abnormal else "normal"})
    _write(path, rows)
    return rows


def _write(path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def train_notes_model(notes, out, epochs: int = 30) -> str:
    """A text model (attention BiGRU) trained on ``notes`` by ``medlens train``, in a few seconds."""
    from medlens.app.train import TrainRequest, train_model

    train_model(TrainRequest(data=str(notes), out=str(out), epochs=epochs, max_length=16, quiet=True))
    return str(out)
