"""A multi-label model's per-finding AUROC equals a naive count of correctly ordered (positive,
negative) pairs, ties counted half, on fixed scores; undefined (NaN) for a finding present everywhere."""

from __future__ import annotations

import math

import torch

from medlens.models.metrics import finding_aurocs, finding_scores


def _pairs(scores: list[float], labels: list[int]) -> float:
    pos = [s for s, y in zip(scores, labels) if y]
    neg = [s for s, y in zip(scores, labels) if not y]
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg) / (len(pos) * len(neg))


def test_per_finding_auroc_is_the_share_of_ordered_pairs():
    probs = torch.tensor([[0.9, 0.2, 0.5], [0.8, 0.7, 0.5], [0.3, 0.4, 0.1], [0.6, 0.4, 0.9], [0.1, 0.9, 0.3]])
    labels = torch.tensor([[1, 0, 1], [0, 1, 1], [0, 1, 1], [1, 0, 1], [0, 0, 1]], dtype=torch.float32)
    got = finding_aurocs(probs, labels)
    for k in range(2):
        assert math.isclose(got[k], _pairs(probs[:, k].tolist(), labels[:, k].int().tolist()))
    assert math.isclose(got[0], 5 / 6) and math.isclose(got[1], 3.5 / 6)  # closed form (a tie at 0.4 counts half)
    assert math.isnan(got[2])  # present in every case
    per = finding_scores(probs, labels, ["a", "b", "c"])
    assert per["a"]["prevalence"] == 0.4 and per["a"]["majority_share"] == 0.6 and per["a"]["accuracy"] == 0.8
