"""What the model's own validation record says before any explanation is read.

A model no better than always answering the most frequent class on its validation split explains
nothing worth showing: its finding, and the maps of it, may reflect nothing the data hold.
``train`` prints this once; every later output that shows a finding (``explain``'s summary, the
case report, the notes reports, the audit, ``evaluate``) carries it as a ``{code: "chance", message}`` warning
next to the familiarity check's, so that nobody who reads only the output misses it.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["RANKING_ALPHA", "model_warnings", "ranks_above_chance", "with_model_warnings"]


#: One-sided level of the test that the validation AUROC beats chance (Mann-Whitney, normal approximation).
RANKING_ALPHA = 0.05


def model_warnings(meta: dict[str, Any]) -> list[dict[str, str]]:
    """``[{"code": "chance", "message": ...}]`` when the model file's validation record
    (``meta["val"]``) is no better than the most frequent class; else ``[]`` (also when the file
    records no validation, as a third-party model). A model whose decisions are the majority
    class's but whose probabilities rank the validation cases better than chance
    (:func:`ranks_above_chance`) is told apart: "what the maps highlight may mean nothing" would be
    wrong of a model whose scores rank well (seen: an attention GRU after 3 epochs on ECG5000, accuracy
    0.579 = the majority share, validation AUROC 0.93)."""
    from medlens.app.recipes import chance_fact

    fact = chance_fact(meta.get("val") or {})
    if fact is None:
        return []
    ranking = ranks_above_chance(meta)
    if ranking is not None:
        auroc, n = ranking
        return [{"code": "chance", "message": (
            f"{fact[0].upper()}{fact[1:]}, though its probabilities rank the validation cases better than chance (AUROC "
            f"{auroc:.2f} over {n} cases; one-sided Mann-Whitney test at {RANKING_ALPHA:.2f}): its decisions may mean "
            "nothing, but its probabilities carry information, so read the probability of each class rather than the "
            "decision.")}]
    return [{"code": "chance", "message": f"{fact[0].upper()}{fact[1:]}: what it predicts, and what the maps "
                                         "highlight, may mean nothing."}]


def ranks_above_chance(meta: dict[str, Any]) -> tuple[float, int] | None:
    """``(AUROC, validation cases)`` when the validation AUROC beats 0.5 at :data:`RANKING_ALPHA`
    (null variance of the Mann-Whitney AUROC, ``(n1 + n2 + 1) / (12 n1 n2)``, with the most frequent
    class against the rest: Hanley and McNeil 1982), else ``None``; ``None`` too when the file does
    not record the AUROC, the majority share or the number of validation cases (its calibration
    table's counts)."""
    import math
    from statistics import NormalDist

    val, calibration = meta.get("val") or {}, meta.get("calibration") or {}
    auroc, share = val.get("auroc"), val.get("majority_share")
    if auroc is None or share is None or calibration.get("split", "validation") != "validation":
        return None
    n = int(sum(calibration.get("counts") or []))
    n1 = round(float(share) * n)
    n2 = n - n1
    if n1 < 1 or n2 < 1 or not math.isfinite(float(auroc)):
        return None
    se = math.sqrt((n + 1) / (12 * n1 * n2))
    return (float(auroc), n) if float(auroc) > 0.5 + NormalDist().inv_cdf(1 - RANKING_ALPHA) * se else None


def with_model_warnings(familiar: Any, meta: dict[str, Any]) -> Any:
    """``familiar`` (:class:`medlens.evaluation.familiarity.Familiarity`) with the model's own
    warnings first in its ``warnings``."""
    extra = model_warnings(meta)
    return dataclasses.replace(familiar, warnings=extra + list(familiar.warnings)) if extra else familiar
