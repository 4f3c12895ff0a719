"""Which patient each case of a folder of scans belongs to, as a digest compared and never shown.

Two cases of one patient (a follow-up scan, the other breast, a second series) are not two
independent cases: one in the training data and one queried, or one in each split, and the model
may be recognising the patient rather than the finding. Where the identity is known a case's
patient is:

* the ``group`` column of its labels CSV (documented as a patient id; :func:`~medlens.data.formats.folders.read_groups`);
* else its DICOM ``PatientID`` (read from the first file's header, pixels not decoded).

A placeholder that every case of a set shares (an anonymiser's ``ANONYMOUS``) names no patient:
:func:`known_patients` drops it. Only digests leave this module, and only to be compared: outputs
say "the same patient", never which.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any, Sequence

__all__ = ["case_patients", "dicom_patient_id", "known_patients", "patient_digest"]


def patient_digest(identifier: str) -> str:
    """A digest of a patient identifier (for comparing two cases; never written out)."""
    return hashlib.sha256(b"medlens-patient\0" + identifier.strip().encode("utf-8", "replace")).hexdigest()


def dicom_patient_id(path: str | os.PathLike) -> str | None:
    """The ``PatientID`` of a DICOM file's header, ``None`` for an empty one or a file that is not
    DICOM (read without its pixels)."""
    try:
        import pydicom

        ds = pydicom.dcmread(str(path), stop_before_pixels=True, specific_tags=["PatientID"])
    except Exception:  # noqa: BLE001 - not DICOM, unreadable, pydicom missing: the identity is unknown
        return None
    value = str(getattr(ds, "PatientID", "") or "").strip()
    return value or None


def case_patients(scans: Any, positions: Sequence[int]) -> list[str | None]:
    """The patient digest of each case at ``positions`` of a :class:`~medlens.data.formats.folders.ScanSet`
    (``None`` where unknown): its labels' ``group``, else its DICOM ``PatientID``."""
    groups = getattr(scans, "groups", None)
    found: list[str | None] = []
    for i in (int(p) for p in positions):
        identity = groups[i] if groups is not None and groups[i] else dicom_patient_id(scans.cases[i].paths[0])
        found.append(None if identity is None else patient_digest(identity))
    return found


def known_patients(digests: Sequence[str | None]) -> list[str | None]:
    """``digests`` with a placeholder dropped: one value shared by every case of three or more
    (an anonymiser's constant) says nothing about who the patients are."""
    values = [d for d in digests if d is not None]
    if len(values) >= 3 and len(values) == len(digests) and len(set(values)) == 1:
        return [None] * len(digests)
    return list(digests)
