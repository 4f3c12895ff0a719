"""The attention analysis of a multi-label model gave as its accuracy the share of sequences whose
top finding (argmax) was the labelled one, though a multi-label model decides each finding at the
threshold. Its accuracy is now the exact match of the findings at the threshold with the labelled
ones (``accuracy_kind`` says so), with the per-finding accuracy beside it."""

from __future__ import annotations

from dataclasses import replace

import torch

from medlens.evaluation.attention import attention_faithfulness
from medlens.models.attention_rnn import AttentionRNN


def _result():
    torch.manual_seed(0)
    model = AttentionRNN(2, in_channels=2, hidden_size=6, attention_size=5, front_channels=4).eval()
    return attention_faithfulness(model, torch.randn(3, 2, 32), n_permutations=2, ig_steps=0)


def test_a_multilabel_models_accuracy_reads_the_findings_at_the_threshold():
    result = replace(_result(), multilabel=True, probabilities=torch.tensor([[0.9, 0.8], [0.9, 0.1], [0.2, 0.3]]))
    one_each = replace(result, labels=torch.tensor([0, 0, 1])).summary()  # argmax would say 3 of 3
    assert one_each["accuracy"] == 1 / 3 and one_each["finding_accuracy"] == 4 / 6
    assert one_each["accuracy_kind"].startswith("exact match")
    vectors = replace(result, labels=torch.tensor([[1, 1], [1, 1], [0, 0]])).summary()
    assert vectors["accuracy"] == 2 / 3 and vectors["finding_accuracy"] == 5 / 6
    single = replace(result, multilabel=False, labels=torch.tensor([0, 0, 1])).summary()
    assert single["accuracy"] == 1.0 and "accuracy_kind" not in single
