"""The "chance" warning tells a model whose decisions are the majority class's but whose
probabilities rank well (an attention GRU after 3 epochs on ECG5000: accuracy 0.579 = the majority
share, validation AUROC 0.93) from one that learnt nothing; before, both were told that what the
maps highlight may mean nothing."""

from __future__ import annotations

import math

from medlens.app.model_quality import model_warnings, ranks_above_chance


def _meta(auroc: float, n: int = 76, share: float = 0.579, accuracy: float = 0.579) -> dict:
    return {"val": {"accuracy": accuracy, "auroc": auroc, "majority_share": share},
            "calibration": {"split": "validation", "counts": [n - 6, 6]}}


def test_the_bar_is_the_mann_whitney_null_at_five_percent():
    n1, n2 = 44, 32  # round(0.579 * 76) and the rest
    bar = 0.5 + 1.6448536 * math.sqrt((n1 + n2 + 1) / (12 * n1 * n2))  # 0.6110
    assert ranks_above_chance(_meta(bar + 0.002)) == (bar + 0.002, 76)
    assert ranks_above_chance(_meta(bar - 0.002)) is None


def test_a_model_that_ranks_well_is_not_told_its_maps_mean_nothing():
    (warning,) = model_warnings(_meta(0.93))
    assert warning["code"] == "chance" and "no better than always answering the most frequent class" in warning["message"]
    assert "AUROC 0.93 over 76 cases" in warning["message"] and "its probabilities carry information" in warning["message"]
    assert "what the maps highlight, may mean nothing" not in warning["message"]


def test_a_model_that_learnt_nothing_keeps_the_plain_warning():
    (warning,) = model_warnings(_meta(0.51, n=270, share=0.5, accuracy=0.507))
    assert warning["message"].endswith("what it predicts, and what the maps highlight, may mean nothing.")
    assert model_warnings(_meta(0.99, accuracy=0.9)) == []  # better than the majority: no warning at all


def test_a_file_without_the_numbers_keeps_the_plain_warning():
    meta = _meta(0.93)
    del meta["calibration"]
    assert ranks_above_chance(meta) is None
    assert model_warnings(meta)[0]["message"].endswith("may mean nothing.")
