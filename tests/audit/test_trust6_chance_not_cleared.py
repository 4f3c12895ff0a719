"""A chance-level model's strategies are never cleared by the audit's headline.

Before, an audit whose model was no better than always answering the most frequent label (its
clusters undecided when tested) still opened with "No candidate shortcut: none of the N prediction
strategies found depends on input away from where the class evidence should be" whenever no
cluster was a candidate: a clean bill from a model that uses no evidence at all.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from medlens.audit.strategies import find_strategies
from medlens.report.audit import flagged_sentences
from tests.audit.test_audit_strategies import GRID, SETTINGS, planted_cohort


def _untagged(labels: str):
    results, tagged = planted_cohort()
    kept = [r for r in results if r.index not in tagged]  # every strategy looks at its lesion or the interior
    if labels == "coin":  # labels unrelated to the predictions: the model is at chance on them
        coin = torch.randint(0, 2, (len(kept),), generator=torch.Generator().manual_seed(1)).tolist()
        kept = [replace(r, label=int(c)) for r, c in zip(kept, coin)]
    else:
        kept = [replace(r, label=r.predicted) for r in kept]
    return find_strategies(kept, SETTINGS, GRID)


def test_a_chance_level_model_gets_no_clean_bill():
    strategies = _untagged("coin")
    assert strategies.chance and not strategies.flagged()
    first = flagged_sentences(strategies, ["no lesion", "lesion"])[0]
    assert first.startswith("No strategy is cleared") and "no better than always answering" in first
    assert "depends on input away from" not in first


def test_a_model_that_is_right_keeps_its_clean_bill():
    strategies = _untagged("right")
    assert not strategies.chance and not strategies.flagged()
    assert flagged_sentences(strategies, ["no lesion", "lesion"])[0].startswith("No candidate shortcut: none of the")
