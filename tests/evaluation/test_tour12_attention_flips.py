"""The attention verdict does not say "the decision hardly depends on where attention points" when
permuting the attention changes the decision in a notable share of permutations.

Seen: ``medlens attention`` on 45 held-out MTSamples notes: "moves the output distribution by a
median total variation distance of 0.027 and changes the decision in 15% of permutations, so the
decision hardly depends on where attention points" (a model whose probabilities sit near 0.5).
"""

from __future__ import annotations

from medlens.evaluation.attention import verdict

SUMMARY = {"tau_gradient_mean": 0.24, "tau_leave_one_out_mean": 0.19, "tau_integrated_gradients_mean": 0.11,
           "permutation_tvd_median": 0.027}


def test_frequent_flips_are_not_called_hardly_depending():
    level, sentences = verdict({**SUMMARY, "permutation_flip_rate": 0.15})
    text = " ".join(sentences)
    assert "15% of permutations" in text and "decision hardly depends" not in text
    assert "near the decision boundary" in text and level == "unreliable"
    _, sentences = verdict({**SUMMARY, "permutation_flip_rate": 0.0})
    assert "decision hardly depends" in " ".join(sentences)
