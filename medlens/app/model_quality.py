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

__all__ = ["MODEL_CODES", "model_warnings", "with_model_warnings"]

#: Codes of the warnings about the model itself (the same on every case), not about a case.
MODEL_CODES = ("chance", "threshold")


def model_warnings(meta: dict[str, Any]) -> list[dict[str, str]]:
    """``[{"code": "chance", "message": ...}]`` when the model file's validation record
    (``meta["val"]``) is no better than the most frequent class; ``[{"code": "threshold", ...}]``
    when it ranks the classes well but decides worse than the most frequent class; else ``[]``
    (also when the file records no validation, as a third-party model)."""
    from medlens.app.recipes import chance_fact, threshold_fact

    val = meta.get("val") or {}
    fact = chance_fact(val)
    if fact is not None:
        return [{"code": "chance", "message": f"{fact[0].upper()}{fact[1:]}: what it predicts, and what the maps "
                                             "highlight, may mean nothing."}]
    fact = threshold_fact(val)
    return [] if fact is None else [{"code": "threshold", "message": f"{fact[0].upper()}{fact[1:]}."}]


def with_model_warnings(familiar: Any, meta: dict[str, Any]) -> Any:
    """``familiar`` (:class:`medlens.evaluation.familiarity.Familiarity`) with the model's own
    warnings first in its ``warnings``."""
    extra = model_warnings(meta)
    return dataclasses.replace(familiar, warnings=extra + list(familiar.warnings)) if extra else familiar
