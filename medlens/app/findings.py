"""What a multi-label model (one sigmoid per finding, :class:`medlens.MultiLabel`) predicts, as the
user reads it: each finding's probability is its own sigmoid (they need not sum to 1), and the
predicted findings are those at :data:`THRESHOLD` or above. The finding explained by default stays
the highest-scoring one."""

from __future__ import annotations

from typing import Any, Sequence

from medlens.core.targets import FINDING_THRESHOLD as THRESHOLD

#: One sentence for the outputs of a multi-label model.
MEANING = (f"one probability per finding (its own sigmoid; they need not sum to 1): predicted findings are those "
           f"with probability >= {THRESHOLD}; the explained finding is the highest-scoring one unless a target is given")


def predicted_findings(probs: Sequence[float], names: Sequence[str]) -> list[str]:
    """The names of the findings whose probability is at least :data:`THRESHOLD`."""
    return [names[j] if j < len(names) else str(j) for j, p in enumerate(probs) if float(p) >= THRESHOLD]


#: The words for a labelled case without any finding (NIH ChestX-ray14's).
NO_FINDING = "No Finding"


def true_findings_words(row: Sequence[float], names: Sequence[str]) -> str:
    """A case's true findings from its 0/1 ``row`` as ``predictions.csv`` writes them: the names
    joined by ``;`` (as the ``predicted`` column joins them), :data:`NO_FINDING` for none, ``""``
    when the case is not labelled (NaN)."""
    if any(v != v for v in row):
        return ""
    return ";".join(names[j] if j < len(names) else str(j) for j, v in enumerate(row) if float(v) >= 0.5) or NO_FINDING


def findings_fields(probs: Sequence[float], names: Sequence[str]) -> dict[str, Any]:
    """The fields a multi-label case adds to its JSON record."""
    return {"multilabel": True, "predicted_findings": predicted_findings(probs, names), "probabilities_meaning": MEANING}
