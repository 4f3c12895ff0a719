"""Classification metrics used to report a model's quality."""

from __future__ import annotations

import torch


def majority_share(labels: torch.Tensor) -> float:
    """The accuracy of always answering the most frequent class."""
    return float(torch.bincount(labels.long()).max()) / max(1, len(labels))


def accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of samples whose most probable class is the label. ``probs`` ``(N, K)``."""
    return float((probs.argmax(1) == labels).float().mean())


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve of a binary problem (Mann-Whitney U, ties counted half).

    Parameters
    ----------
    scores : torch.Tensor
        ``(N,)`` score of the positive class.
    labels : torch.Tensor
        ``(N,)`` 0/1.
    """
    scores = scores.double()
    labels = labels.bool()
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # average ranks handle ties exactly
    order = scores.argsort()
    ranks = torch.empty_like(scores)
    sorted_scores = scores[order]
    i = 0
    n = len(scores)
    rank_values = torch.arange(1, n + 1, dtype=torch.float64)
    while i < n:
        j = i
        while j + 1 < n and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = rank_values[i : j + 1].mean()
        i = j + 1
    rank_sum = ranks[labels].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_auroc(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """One-vs-rest AUROC averaged over classes present; the plain AUROC for two classes."""
    if probs.shape[1] == 2:
        return auroc(probs[:, 1], labels)
    values = [auroc(probs[:, k], labels == k) for k in range(probs.shape[1])]
    values = [v for v in values if v == v]
    return float(sum(values) / len(values)) if values else float("nan")


def finding_aurocs(probs: torch.Tensor, labels: torch.Tensor) -> list[float]:
    """A multi-label model's AUROC per finding: column ``k`` of ``probs`` ``(N, K)`` against
    column ``k`` of the 0/1 ``labels`` ``(N, K)``; NaN for a finding present in every case or in none."""
    return [auroc(probs[:, k], labels[:, k] > 0.5) for k in range(labels.shape[1])]


def finding_scores(probs: torch.Tensor, labels: torch.Tensor, names: "list[str] | tuple[str, ...]",
                   threshold: float = 0.5) -> dict[str, dict[str, float]]:
    """Per finding: its AUROC, its prevalence (share of cases with it), the accuracy of deciding it
    at ``probs >= threshold`` and the accuracy of always answering its majority (present or absent)."""
    present = labels > 0.5
    out = {}
    for k, value in enumerate(finding_aurocs(probs, labels)):
        prevalence = float(present[:, k].double().mean()) if len(labels) else float("nan")
        out[str(names[k])] = {"auroc": value, "prevalence": prevalence,
                              "accuracy": float(((probs[:, k] >= threshold) == present[:, k]).double().mean()),
                              "majority_share": max(prevalence, 1 - prevalence)}
    return out
