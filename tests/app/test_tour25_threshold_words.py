"""The ``threshold`` warning says what is true of the model: a model whose validation accuracy equals
the most frequent class's share (0.833 against 0.833, as a README walkthrough's model trained on 120
BreastMNIST scans had) was told its decisions "are right less often than always answering the most
frequent class: it calls the rarer class more often than the data hold it", neither of which held."""
from __future__ import annotations

from medlens.app.recipes import threshold_fact


def test_equal_to_the_majority_share_is_no_more_often_and_names_no_favoured_class():
    fact = threshold_fact({"accuracy": 0.8333, "auroc": 0.91, "majority_share": 0.8333})
    assert "right no more often than always answering" in fact and "rarer class" not in fact


def test_below_the_majority_share_is_less_often_and_favours_the_rarer_class():
    fact = threshold_fact({"accuracy": 0.968, "auroc": 0.990, "majority_share": 0.988})
    assert "right less often than always answering" in fact and "calls the rarer class more often" in fact
