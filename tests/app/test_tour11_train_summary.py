"""``medlens train`` on eight records split by record printed "val accuracy 0.000 AUROC nan": one record
in the validation split is one class, and the line showed a bare NaN where ``predict`` says why."""

from __future__ import annotations

from medlens.app.recipes import trained_summary


def test_an_undefined_auroc_is_said_in_words():
    meta = {"data": "the user's signal records", "val": {"accuracy": 0.0, "auroc": float("nan")},
            "test": {"accuracy": 0.9, "auroc": 0.95}}
    line = trained_summary("attention-rnn", "records/", meta)
    assert "nan" not in line.lower()
    assert "val accuracy 0.000 AUROC not defined (one class in the split); test accuracy 0.900 AUROC 0.950" in line
