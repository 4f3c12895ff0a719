"""Kept for existing import paths: the familiarity check lives in :mod:`medlens.evaluation.familiarity`
(a trust check on a case that needs only the engine). ``app.case_report`` and ``app.recipes``
import it from here; point them there and this module can go.
"""

from medlens.evaluation.familiarity import (
    Familiarity,
    familiarity,
    familiarity_reference,
    input_summary,
)

__all__ = ["Familiarity", "familiarity", "familiarity_reference", "input_summary"]
