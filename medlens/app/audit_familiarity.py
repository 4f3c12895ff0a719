"""Is the audited cohort like the model's training data? The case report's familiarity check,
run on every audited case.

An audit of scans from another hospital, scanner or modality finds strategies on cases the model
may never have seen the like of: "no candidate shortcut" then says little; a leaderboard on such
cases ranks methods on inputs the model was not made for. Each audited (or evaluated) case is
read again through its source and checked as the case report checks one scan
(:func:`medlens.evaluation.familiarity.familiarity`: its native facts against the model's
training facts, and its distances from the training data against the validation split's 99th
percentile, thresholds chosen at training). ``familiarity.csv`` lists every case with the codes
of its warnings and the reasons it is unlike the training data; the report and the command's output say how many cases are unlike the
training data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

__all__ = ["CohortFamiliarity", "check_cases", "cohort_familiarity"]

FILE = "familiarity.csv"


class CohortFamiliarity:
    """Per-case rows and the sentence that sums them up (``None`` when nothing could be judged).
    ``what`` names the cases in that sentence ("audited", "evaluated")."""

    def __init__(self, rows: list[dict[str, Any]], judged: int, unlike: int, what: str = "audited") -> None:
        self.rows, self.judged, self.unlike, self.what = rows, judged, unlike, what

    @property
    def sentence(self) -> str | None:
        if not self.judged:
            return None
        n, what = len(self.rows), self.what
        if not self.unlike:
            return (f"All {self.judged} {what} cases that could be judged resemble the model's training data "
                    f"(familiarity.csv).")
        share = self.unlike / self.judged
        consequence = {"audited": "the strategies found on them, and the absence of a flagged one, may mean nothing",
                       "evaluated": "how well each method explains the model on them says little about the cases it "
                                    "was made for, and the verdict below holds for these cases only",
                       "predicted": "their predictions may mean nothing"}.get(what, "")
        return (f"{self.unlike} of the {self.judged} {what} cases ({share:.0%}) are unlike the model's training data "
                f"(familiarity.csv says why, per case): the model may never have seen cases like them, so {consequence}"
                + ("." if self.judged == n else f"; {n - self.judged} case(s) could not be judged."))


#: At most this many cases are held at once (their inputs and readings), whatever the memory budget.
MOST_CASES_PER_CHUNK = 1024
#: The inputs held at once take at most this share of the engine's memory budget: their summary
#: (:func:`medlens.evaluation.familiarity.input_summary`) works on float64 copies (the values, their
#: sorted copy for the percentiles, their differences along an axis), about 6 times the inputs' bytes
#: in float32, and the model's pass over them is budgeted apart.
INPUT_SHARE_OF_BUDGET = 0.125


def check_cases(model: Any, meta: dict, entries: Iterable[tuple[str, Callable[[], Any]]], out: str | Path,
                *, what: str = "audited", budget: Any = None) -> CohortFamiliarity:
    """Check each case of ``entries`` (its name, and a function that reads it as a
    :class:`~medlens.data.cases.Case`) as the case report checks one scan, and write
    ``OUT/familiarity.csv`` (case, unlike_training_data, score, warnings, reasons: why a case is
    unlike the training data, the phrases of its sentence).

    The cases are read in chunks, as many as fit in a share of the engine's memory ``budget``
    (:class:`medlens.core.engine.Budget`, default: the engine's), and each chunk is checked with
    one pass of the model per input shape
    (:func:`medlens.evaluation.familiarity.familiarity_of_cases`: the one-case answers)."""
    from medlens.core.engine import Budget, budget_bytes, model_device
    from medlens.core.files import write_csv
    from medlens.data.kinds import channel_names_of_model, facts_of_model
    from medlens.errors import MedlensError
    from medlens.evaluation.familiarity import familiarity_of_cases

    facts, reference = facts_of_model(meta), meta.get("familiarity")
    channels = channel_names_of_model(meta)
    budget = budget or Budget()
    held_bytes = INPUT_SHARE_OF_BUDGET * budget_bytes(budget, model_device(model))
    rows: list[dict[str, Any]] = []
    chunk: list[tuple[str, Any]] = []  # (name, case or None when unreadable), in the order given

    def check_chunk() -> None:
        read = [(name, case) for name, case in chunk if case is not None]
        found = iter(familiarity_of_cases(model, [c.x for _, c in read], reference,
                                          readings=[c.reading for _, c in read], facts=facts, channels=channels,
                                          budget=budget))
        rows.extend(_row(name, None if case is None else next(found)) for name, case in chunk)
        chunk.clear()

    size = 0
    for name, read_case in entries:
        try:
            case = read_case()
        except MedlensError:  # readable before and not now: not judged
            case = None
        chunk.append((name, case))
        size += 0 if case is None else case.x.numel() * case.x.element_size()
        if size >= held_bytes or len(chunk) >= MOST_CASES_PER_CHUNK:
            check_chunk()
            size = 0
    check_chunk()
    judged = sum(r["unlike_training_data"] != "" for r in rows)
    unlike = sum(r["unlike_training_data"] == 1 for r in rows)
    write_csv(Path(out) / FILE, rows, ["case", "unlike_training_data", "score", "warnings", "reasons"])
    return CohortFamiliarity(rows, judged, unlike, what)


def _row(name: str, found: Any) -> dict[str, Any]:
    """The ``familiarity.csv`` row of one case (``found``: its
    :class:`~medlens.evaluation.familiarity.Familiarity`, ``None`` when it could not be read)."""
    if found is None:
        return {"case": name, "unlike_training_data": "", "score": "", "warnings": "unreadable", "reasons": ""}
    return {"case": name, "unlike_training_data": "" if found.unlike is None else int(found.unlike),
            "score": "" if found.score is None else f"{found.score:.3f}",
            "warnings": ",".join(w["code"] for w in found.warnings), "reasons": "; ".join(found.reasons)}


def cohort_familiarity(model: Any, meta: dict, cases: Any, results: Sequence[Any], out: str | Path,
                       what: str = "audited") -> CohortFamiliarity:
    """Check every case of ``results`` (:class:`~medlens.audit.cases.CaseResult` rows, read again
    through ``cases``, the source they came from: its ``case(index)``) and write
    ``OUT/familiarity.csv``."""
    return check_cases(model, meta, [(r.case, partial(cases.case, r.index)) for r in results], out, what=what)
