"""The leaderboard recommends no method for a model whose predictions on the scored cases are not
shown to beat always answering the most frequent label: a map can show what such a model uses (a
CNN that memorised 120 BreastMNIST cases with shuffled labels is confident on every case), but what
it uses is no evidence of the finding. The test is the audit's (one binomial test, one module)."""

from __future__ import annotations

import math

import torch

from medlens.data import load_dataset
from medlens.evaluation import LeaderboardSettings, evaluate
from medlens.evaluation.chance import chance_record
from medlens.evaluation.leaderboard import trust_verdict
from medlens.models.cnn import CNN
from tests.evaluation.fake_summary import fake_summary

ROWS = {("gradcam", "deletion_auc"): 0.30, ("baseline:random", "deletion_auc"): 0.45,
        ("gradcam", "randomisation_spearman"): 0.1}


def _tail(right: int, n: int, share: float) -> float:
    """P(X >= right) for X ~ Binomial(n, share), summed term by term."""
    return sum(math.comb(n, k) * share**k * (1 - share) ** (n - k) for k in range(right, n + 1))


def test_chance_record_is_the_one_sided_binomial_tail():
    pairs = [(1, 1)] * 60 + [(0, 1)] * 40  # always answers 1; 1 is the most frequent label
    record = chance_record(pairs)
    assert (record["n"], record["right"], record["majority_share"]) == (100, 60, 0.6)
    assert math.isclose(record["p"], _tail(60, 100, 0.6), rel_tol=1e-9) and record["better"] is False
    good = chance_record([(i % 2, i % 2) for i in range(30)] + [(0, 1)] * 4)  # 30 of 34 right, share 0.5
    assert math.isclose(good["p"], _tail(30, 34, 19 / 34), rel_tol=1e-9) and good["better"] is True
    assert chance_record([(None, 1), (None, 0)]) is None


def _summary(chance):
    summary = fake_summary(ROWS, metrics=["deletion_auc", "randomisation_spearman"], entries=["gradcam", "baseline:random"], n=40)
    summary["chance"] = chance
    return summary


def test_a_model_at_chance_gets_no_recommendation():
    at_chance = chance_record([(1, 1)] * 26 + [(0, 1)] * 14)  # 65% right, 65% for the most frequent label
    verdict = trust_verdict(_summary(at_chance))
    assert verdict["best"] is None and not verdict["methods"]["gradcam"]["eligible"]
    assert verdict["text"][0].startswith("No method can be recommended for this model: the model's predictions on these "
                                         "40 cases are not shown to beat always answering the most frequent label (26 right")
    assert trust_verdict(_summary(None))["best"] == "gradcam"  # no labels: no test, the checks decide as before
    assert trust_verdict(_summary(chance_record([(i % 2, i % 2) for i in range(40)])))["best"] == "gradcam"


def test_the_summary_carries_the_chance_record_of_the_scored_cases(tmp_path):
    torch.manual_seed(0)
    model = CNN(2, 1, 2, input_shape=(1, 28, 28)).eval()
    test = load_dataset("pneumoniamnist", "test")
    x, labels = test.inputs[224:244], test.labels[224:244]  # 10 pneumonia, 10 normal
    summary = evaluate(model, x, labels, out=tmp_path, progress=False,
                       settings=LeaderboardSettings(methods=["gradient"], metrics=["deletion_auc"], baselines=("random",),
                                                    metric_options={"deletion_auc": {"steps": 4}}))
    with torch.no_grad():
        predicted = model(x).argmax(1)
    assert summary["chance"] == chance_record(zip(labels.tolist(), predicted.tolist()))
    assert summary["chance"]["n"] == 20 and summary["chance"]["majority_share"] == 0.5
