"""The case report's header states the test accuracy beside always answering the most frequent class
(train's line: tests/app/test_tour12_accuracy_against_majority.py); older model files, which record no
share, say nothing of it."""

from __future__ import annotations

from medlens.app.case_report.build import _model_words
from medlens.app.recipes import majority_words


def test_the_report_header_gives_the_share_beside_the_test_accuracy():
    meta = {"data": "pneumoniamnist", "test": {"accuracy": 0.889, "majority_share": 0.625}}
    assert _model_words(meta) == "trained on pneumoniamnist, test accuracy 0.89 (most frequent class 0.62)"


def test_older_model_files_without_the_share_say_nothing_of_it():
    assert majority_words({"accuracy": 0.9}) == ""
    assert _model_words({"data": "x", "test": {"accuracy": 0.9}}) == "trained on x, test accuracy 0.90"
