"""The attention verdict said "changes the decision in 25% of permutations, so the decision hardly
depends on where attention points" (an attention RNN on ECG5000, median TVD 0.031): the words
contradicted the number beside them. "Hardly depends" is now said only when few decisions change."""

from __future__ import annotations

from medlens.evaluation.attention import verdict

SUMMARY = {"tau_gradient_mean": 0.50, "tau_leave_one_out_mean": 0.54, "tau_integrated_gradients_mean": 0.15,
           "permutation_tvd_median": 0.031}


def test_many_flipped_decisions_are_not_called_hardly_dependent():
    _, sentences = verdict({**SUMMARY, "permutation_flip_rate": 0.25})
    permutation = next(s for s in sentences if s.startswith("Randomly permuting"))
    assert "changes the decision in 25% of permutations" in permutation
    assert "the decision hardly depends" not in permutation and "near the class boundary does" in permutation


def test_few_flipped_decisions_still_read_hardly_dependent():
    level, sentences = verdict({**SUMMARY, "permutation_flip_rate": 0.01})
    assert any("so the decision hardly depends on where attention points" in s for s in sentences)
    assert level == "caution"


def test_the_verdict_names_the_checks_that_failed():
    """"passes 2 of 3 checks" did not say which one failed (MIT-BIH 100 beats: tau 0.33 with gradients,
    0.24 with leave-one-out)."""
    _, sentences = verdict({"tau_gradient_mean": 0.33, "tau_leave_one_out_mean": 0.24,
                            "permutation_tvd_median": 0.986, "permutation_flip_rate": 0.9})
    assert "passes 2 of 3 checks (fails: tau with leave-one-out >= 0.3)" in sentences[-1]
