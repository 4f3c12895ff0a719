"""Scored cases that all carry one label cannot show that a model beats always answering that label:
a model that answers "pneumonia" whatever it sees is right on every one of them. PneumoniaMNIST's test
split is sorted by label, so ``medlens evaluate --limit N`` (N <= 234) scores pneumonia cases only, and a
perfect score there was taken as "better than chance" (p = 0) and let the leaderboard recommend a method
(the audit, which asks the same test, cleared strategies)."""

from __future__ import annotations

from medlens.evaluation.chance import chance_record
from medlens.evaluation.leaderboard import trust_verdict
from tests.evaluation.fake_summary import fake_summary

ROWS = {("gradcam", "deletion_auc"): 0.30, ("baseline:random", "deletion_auc"): 0.45,
        ("gradcam", "randomisation_spearman"): 0.1}


def test_a_perfect_score_on_cases_of_one_label_does_not_beat_answering_that_label():
    record = chance_record([(1, 1)] * 60)
    assert record["majority_share"] == 1.0 and record["right"] == 60
    assert record["better"] is False and record["p"] == 1.0


def test_the_verdict_recommends_nothing_and_says_the_cases_hold_one_label():
    summary = fake_summary(ROWS, metrics=["deletion_auc", "randomisation_spearman"], entries=["gradcam", "baseline:random"],
                           n=3)
    summary["chance"] = chance_record([(1, 1)] * 3)
    verdict = trust_verdict(summary)
    assert verdict["best"] is None and not verdict["methods"]["gradcam"]["eligible"]
    text = verdict["text"][0]
    assert "all 3 cases have the same label" in text and "more than one label" in text
