"""``medlens attention`` named its example figures case1.png, case2.png by their order among the
examples, while each caption names the row as "sequence #7": the file of "sequence #7" is now
sequence7.png."""

from __future__ import annotations

import torch

from medlens.evaluation.attention import attention_faithfulness, verdict
from medlens.models.attention_rnn import AttentionRNN
from medlens.report import Report
from medlens.report.attention import attention_analysis


def test_example_files_are_named_by_the_row_their_caption_gives():
    torch.manual_seed(0)
    model = AttentionRNN(2, in_channels=2, hidden_size=6, attention_size=5, front_channels=4).eval()
    x = torch.randn(9, 2, 64)
    result = attention_faithfulness(model, x, n_permutations=2, ig_steps=0)
    summary = result.summary()
    section = Report("t").section("s")
    pngs = attention_analysis(section, result, x, summary=summary, verdict=verdict(summary), cases=[7, 2],
                              class_names=["a", "b"], fs=32.0)
    assert sorted(pngs) == ["sequence2.png", "sequence7.png"]
