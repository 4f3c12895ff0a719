"""What the model's probability means: the reliability table stored with a model file and its sentence."""

from __future__ import annotations

import numpy as np
import torch

def calibration_data(probs: torch.Tensor, labels: torch.Tensor, *, bins: int = 10, split: str = "validation") -> dict:
    """Reliability table of a classifier, to store in a model file's metadata.

    Parameters
    ----------
    probs : torch.Tensor
        ``(N, K)`` predicted probabilities on held-out cases.
    labels : torch.Tensor
        ``(N,)`` their labels.
    bins : int
        Equal-width bins of the confidence (the predicted class's probability).

    Returns
    -------
    dict
        ``{"split", "edges", "counts", "accuracy", "ece"}``: per bin the number of cases whose
        confidence falls in it and the share of them predicted correctly; the expected
        calibration error (Guo et al., ICML 2017).
    """
    conf, pred = probs.double().max(1)
    correct = (pred == labels.long()).double()
    edges = torch.linspace(0, 1, bins + 1, dtype=torch.float64)
    which = torch.clamp(torch.bucketize(conf, edges[1:-1], right=True), 0, bins - 1)
    counts, accuracy, ece = [], [], 0.0
    for b in range(bins):
        sel = which == b
        n = int(sel.sum())
        counts.append(n)
        accuracy.append(float(correct[sel].mean()) if n else None)
        if n:
            ece += n / len(conf) * abs(float(correct[sel].mean()) - float(conf[sel].mean()))
    return {"split": split, "edges": edges.tolist(), "counts": counts, "accuracy": accuracy, "ece": ece}


def calibration_sentence(calibration: dict | None, confidence: float, *, like_training: bool = True
                         ) -> tuple[str | None, list[tuple[str, str]]]:
    """What a confidence means, from :func:`calibration_data`: sentence and table rows.

    The record holds for cases like the held-out ones; for a case unlike the training data
    (``like_training=False``) the sentence says that it does not carry over."""
    if not calibration:
        return None, []
    edges, counts, accuracy = calibration["edges"], calibration["counts"], calibration["accuracy"]
    rows = [
        (f"{edges[b]:.0%} to {edges[b + 1]:.0%}", f"right in {accuracy[b]:.0%} of {counts[b]} cases")
        for b in range(len(counts)) if counts[b]
    ]
    b = min(max(int(np.searchsorted(edges, confidence, side="right")) - 1, 0), len(counts) - 1)
    split = calibration.get("split", "held-out")
    if not counts[b]:
        return (f"No {split} case received a probability between {edges[b]:.0%} and {edges[b + 1]:.0%}, so the "
                "model's record at this probability is unknown."), rows
    record = (f"Of the {counts[b]} {split} cases where the model was between {edges[b]:.0%} and {edges[b + 1]:.0%} "
              f"sure, it was right in {accuracy[b]:.0%}")
    if not like_training:
        return (f"{record}; that record is of cases like the training data, and this one is not, so it says "
                "nothing of how often such a probability is right here."), rows
    return record + ".", rows


# --------------------------------------------------------------------------------------------
# Trust
# --------------------------------------------------------------------------------------------


