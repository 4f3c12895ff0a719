"""The leaderboard never recommends a method on a deletion test that could not fail.

Seen: an untrained CNN (PyTorch's default initialisation, no training) on 40 PneumoniaMNIST
test cases answers 0.50 on every case, blurred or not; gradcam's deletion AUC was 0.00002 below
the random map's with a 95% interval of [-0.00003, -0.00001], and ``medlens evaluate`` said
"Trust gradcam for this model".
"""

from __future__ import annotations

import torch

from medlens.data import load_dataset
from medlens.evaluation import LeaderboardSettings, evaluate
from medlens.evaluation.faithfulness import MIN_DROP
from medlens.evaluation.leaderboard import trust_verdict
from medlens.evaluation.leaderboard.verdict import deletion_drop
from medlens.models.cnn import CNN
from tests.evaluation.fake_summary import fake_summary

ROWS = {("gradcam", "deletion_auc"): 0.40, ("baseline:random", "deletion_auc"): 0.45,
        ("gradcam", "randomisation_spearman"): 0.1}


def _with_random_curve(start: float, end: float) -> dict:
    summary = fake_summary(ROWS, metrics=["deletion_auc", "randomisation_spearman"],
                           entries=["gradcam", "baseline:random"], n=40)
    curve = [start + (end - start) * k / 4 for k in range(5)]
    summary["curves"] = {"deletion_auc": {"fractions": [k / 4 for k in range(5)],
                                          "methods": {"gradcam": curve, "baseline:random": curve}}}
    return summary


def test_a_deletion_curve_that_cannot_fall_recommends_nothing():
    flat = trust_verdict(_with_random_curve(0.5, 0.5))
    assert flat["best"] is None
    assert "cannot judge its maps" in " ".join(flat["text"])
    assert not flat["methods"]["gradcam"]["eligible"]


def test_a_deletion_curve_that_falls_keeps_the_recommendation():
    falling = trust_verdict(_with_random_curve(0.9, 0.9 - 2 * MIN_DROP))
    assert falling["best"] == "gradcam"
    assert trust_verdict(_with_random_curve(0.9, 0.9 - MIN_DROP / 2))["best"] is None  # just below the bar


def test_no_curve_stored_leaves_the_verdict_as_it_was():
    summary = fake_summary(ROWS, metrics=["deletion_auc", "randomisation_spearman"],
                           entries=["gradcam", "baseline:random"], n=40)
    assert deletion_drop(summary) is None
    assert trust_verdict(summary)["best"] == "gradcam"


def test_untrained_cnn_on_chest_xrays_is_not_trusted(tmp_path):
    torch.manual_seed(0)
    model = CNN(2, 1, 2, input_shape=(1, 28, 28)).eval()  # never trained
    x = load_dataset("pneumoniamnist", "test").inputs[:12]
    settings = LeaderboardSettings(methods=["gradcam"], metrics=["deletion_auc", "randomisation_spearman"],
                                   baselines=("random",), target="predicted",
                                   metric_options={"deletion_auc": {"steps": 5}})
    summary = evaluate(model, x, out=tmp_path, settings=settings, progress=False)
    assert deletion_drop(summary) < MIN_DROP  # the model's output does not move when the scan is blurred away
    assert summary["verdict"]["best"] is None
    assert "cannot judge" in " ".join(summary["verdict"]["text"])
