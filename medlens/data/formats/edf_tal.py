"""EDF+ annotation signals ("EDF Annotations", "BDF Annotations"): which channels they are, and the
time-stamped annotation lists (TALs) they hold.

pyedflib hides an annotation signal and reads its TALs only when the header says EDF+/BDF+; a file
whose reserved field is blank (a legacy EDF written by software that adds an annotation channel
all the same) comes back with the annotation channel as one more signal of text bytes. This module
tells those channels apart and reads their annotations from the raw samples.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ANNOTATION_LABELS", "is_annotation_label", "tal_annotations"]

#: Labels the EDF+ and BDF+ specifications give an annotation signal.
ANNOTATION_LABELS = ("EDF Annotations", "BDF Annotations")


def is_annotation_label(label: str) -> bool:
    """Whether a signal label names an annotation signal, not a lead."""
    return str(label).strip() in ANNOTATION_LABELS


def tal_annotations(digital: np.ndarray, bytes_per_sample: int) -> list[tuple[float, float, str]]:
    """``(onset seconds, duration seconds or 0, text)`` of every annotation in an annotation
    signal's digital samples (2 bytes a sample for EDF, 3 for BDF, little-endian, as stored).

    A TAL is ``+onset[\\x15duration]\\x14text\\x14[text\\x14...]\\x00``; the first TAL of each data
    record keeps time (no text) and gives no annotation. A TAL whose onset is not a number is
    skipped."""
    raw = np.ascontiguousarray(digital, dtype="<i4").view(np.uint8).reshape(-1, 4)[:, :bytes_per_sample]
    annotations = []
    for tal in raw.tobytes().split(b"\x00"):
        parts = tal.split(b"\x14")
        if len(parts) < 2:
            continue
        timing = parts[0].decode("latin-1").split("\x15")
        try:
            onset = float(timing[0])
            duration = float(timing[1]) if len(timing) > 1 and timing[1] else 0.0
        except ValueError:
            continue
        for text in parts[1:]:
            if text:
                annotations.append((onset, max(duration, 0.0), text.decode("utf-8", errors="replace")))
    return annotations
