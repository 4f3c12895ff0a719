"""Training a multi-label model: one sigmoid per finding (ChestMNIST's 14, CheXpert's, NIH ChestX-ray14's).

A data set whose labels are ``(N, K)`` of 0/1 (:func:`medlens.data.load_dataset`; a folder of scans
with a findings CSV, :mod:`medlens.data.formats.finding_labels`) trains one logit per finding with
the binary cross-entropy of each finding's own sigmoid. A rare finding would otherwise be learnt as
"always absent", so each finding's positives are weighted by ``absent / present`` in the training
split (``pos_weight``, stored in the model file): the loss then weighs a finding's presences and
absences alike, as balanced sampling does for a single-label model; the price is that a rare
finding's probability runs higher than its prevalence (read its ranking, the AUROC, before its
probability). Each split is scored per finding: AUROC, prevalence, the accuracy of deciding it at
0.5 and the accuracy of always answering its majority; the model's ``auroc`` is their macro mean.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
from torch import nn

from medlens.errors import InputError
from medlens.models.metrics import finding_scores

__all__ = ["check_findings", "finding_chance_fact", "finding_lines", "finding_loss", "split_record"]

#: A finding counts as learnt when its validation AUROC reaches this (Hosmer and Lemeshow's
#: "acceptable discrimination"), whatever its accuracy against its majority.
LEARNT_AUROC = 0.7


def check_findings(labels: torch.Tensor, names: Sequence[str]) -> None:
    """Refuse training labels in which a finding is present in every case or in none: its weight
    and its AUROC are undefined, and the model could only learn to answer it always the same."""
    counts = (labels > 0.5).sum(0).tolist()
    constant = [f"{names[k]!r} ({'all' if c else 'none'} of {len(labels)})" for k, c in enumerate(counts)
                if c in (0, len(labels))]
    if constant:
        raise InputError(f"the training split has finding(s) present in every case or in none: {', '.join(constant)}; "
                         "leave them out or give cases with and without each finding")


def finding_loss(labels: torch.Tensor) -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], list[float]]:
    """The loss (each finding's own sigmoid, binary cross-entropy) and the per-finding
    ``pos_weight`` = absent / present in the training ``labels`` ``(N, K)``."""
    present = (labels > 0.5).double().sum(0)
    weight = ((len(labels) - present) / present).float()
    loss = nn.BCEWithLogitsLoss(pos_weight=weight)
    return (lambda logits, target: loss(logits, target.float())), [round(float(w), 4) for w in weight]


def split_record(probs: torch.Tensor, labels: torch.Tensor, names: Sequence[str], scores: Any) -> dict[str, Any]:
    """What the model file records of one split: the mean accuracy and macro AUROC (``scores``,
    :class:`medlens.models.training.Scores`), the mean of the findings' majority shares, and per finding
    its AUROC (``None`` when undefined), prevalence, accuracy and majority share."""
    per = finding_scores(probs, labels, list(names))
    for record in per.values():
        record["auroc"] = None if math.isnan(record["auroc"]) else record["auroc"]
    shares = [r["majority_share"] for r in per.values()]
    return {**scores.as_dict(), "majority_share": sum(shares) / max(1, len(shares)), "findings": per}


def _at_chance(record: dict[str, Any]) -> bool:
    auroc = record.get("auroc")
    learnt = auroc is not None and auroc == auroc and auroc >= LEARNT_AUROC
    return not learnt and record["accuracy"] <= record["majority_share"] + 0.01


def finding_chance_fact(val: dict[str, Any]) -> str | None:
    """The findings no better than always answering their majority on the validation split (their
    accuracy not above it, and an AUROC below :data:`LEARNT_AUROC` or undefined), in one clause;
    ``None`` when every finding is learnt."""
    per = val.get("findings") or {}
    weak = {name: r for name, r in per.items() if _at_chance(r)}
    if not weak:
        return None
    listed = "; ".join(f"{name!r}: accuracy {r['accuracy']:.3f}, always {'present' if r['prevalence'] > 0.5 else 'absent'} "
                       f"{r['majority_share']:.3f}, AUROC {'not defined' if r['auroc'] is None else format(r['auroc'], '.3f')}"
                       for name, r in list(weak.items())[:8])
    more = f" and {len(weak) - 8} more" if len(weak) > 8 else ""
    whole = "the model is" if len(weak) == len(per) else f"{len(weak)} of its {len(per)} findings are"
    return (f"{whole} no better than always answering each finding's majority on the validation split "
            f"({listed}{more})")


def finding_lines(meta: dict[str, Any]) -> list[str]:
    """One line per finding for ``medlens train``: validation and test AUROC against the finding's prevalence."""
    val, test = meta["val"].get("findings") or {}, meta["test"].get("findings") or {}

    def auroc(r: dict[str, Any] | None) -> str:
        return "n/a" if r is None or r["auroc"] is None else f"{r['auroc']:.3f}"

    def prevalence(r: dict[str, Any] | None) -> str:
        return "n/a" if r is None else f"{r['prevalence']:.3f}"

    return [f"finding {name!r}: val AUROC {auroc(r)} (prevalence {prevalence(r)}); test AUROC {auroc(test.get(name))} "
            f"(prevalence {prevalence(test.get(name))})" for name, r in val.items()]
