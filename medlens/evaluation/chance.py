"""Are the model's predictions better than always answering the most frequent label?

One test for every verdict that must not clear or recommend anything on a model that uses no
evidence: the audit's strategies (:mod:`medlens.audit.strategies`) and the leaderboard's
recommendation (:mod:`medlens.evaluation.leaderboard.verdict`). A one-sided exact binomial test of
the number of right predictions against the share of the most frequent label among the same cases.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable

__all__ = ["CHANCE_ALPHA", "chance_record", "chance_words"]

#: Level of the one-sided binomial test.
CHANCE_ALPHA = 0.05


def chance_record(pairs: Iterable[tuple[int | None, int]], level: float = CHANCE_ALPHA) -> dict | None:
    """``{"n", "right", "majority_share", "p", "better"}`` for ``(label, predicted)`` pairs (pairs
    without a label are left out); ``None`` when no pair has a label. ``better``: the predictions
    beat always answering the most frequent label at ``level`` (never when every label is the same:
    always answering it is then right on every case, so no score can beat it; ``p`` is 1)."""
    from scipy.stats import binomtest

    labelled = [(int(label), int(pred)) for label, pred in pairs if label is not None]
    if not labelled:
        return None
    n = len(labelled)
    share = max(Counter(label for label, _ in labelled).values()) / n
    right = sum(label == pred for label, pred in labelled)
    if share >= 1.0:
        p = 1.0
    else:
        p = float(binomtest(right, n, share, alternative="greater").pvalue)
    return {"n": n, "right": right, "majority_share": share, "p": p, "better": p < level}


def chance_words(record: dict) -> str:
    """What a :func:`chance_record` whose ``better`` is false says, as a clause ("the model's
    predictions on these 40 cases are not shown to beat ...")."""
    if record["majority_share"] >= 1.0:
        return (f"all {record['n']} cases have the same label, so no score on them can show that the model's "
                f"predictions beat always answering it ({record['right']} right)")
    return (f"the model's predictions on these {record['n']} cases are not shown to beat always answering the most "
            f"frequent label ({record['right']} right, {record['right'] / record['n']:.0%}, against "
            f"{record['majority_share']:.0%} for the most frequent label; one-sided binomial test p = {record['p']:.2g})")
