"""A case report's similar cases drawn from a folder of scans (``report --basis-data FOLDER``).

The folder is read exactly as ``medlens basis --data FOLDER`` reads it
(:func:`medlens.app.reference_cases.reference_sets`: the model's recorded training split when it was
trained on this folder, else every case). What the report then knows of a retrieved case beyond its
pixels: its stable id (``case-0003``, never a file or patient name), whether it is of the query's
patient (:func:`medlens.app.basis.same_patient_flags`, by digest) and whether its pixels must be
withheld (:mod:`medlens.app.pixel_privacy`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

__all__ = ["FolderBasis"]


@dataclass(frozen=True)
class FolderBasis:
    """``reference``: the folder's cases (:class:`~medlens.app.reference_cases.ReferenceSet`);
    ``query``: the opened input of the report (its scans give the query's patient), or ``None``."""

    reference: Any
    query: Any = None
    show_identifiers: bool = False

    def name(self, row: int) -> str:
        """Row ``row``'s name in outputs: its case id."""
        return self.reference.name(row)

    def same_patient(self, retrieved: Any) -> Any:
        """``(1, k)`` bool: each retrieved row is of the query's patient; ``None`` where not known."""
        from medlens.app.basis import same_patient_flags

        return None if self.query is None else same_patient_flags(self.reference, self.query, [0], retrieved)

    def withheld(self, rows: Sequence[int]) -> list[int]:
        """The ``rows`` whose pixels identify the patient (none with ``show_identifiers``)."""
        from medlens.app.pixel_privacy import reference_privacy

        return [] if self.show_identifiers else reference_privacy(self.reference, rows)[0]
