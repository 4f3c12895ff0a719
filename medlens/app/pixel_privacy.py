"""Whether a scan's own pixels may be drawn in what medlens writes.

A DICOM header can say that the image itself names the patient: ``BurnedInAnnotation`` ``YES``
(an ultrasound's or a screen capture's banner with name, ID and date) or
``RecognizableVisualFeatures`` ``YES`` (a face). De-identifying the header does not touch those
pixels, and PS3.15 lets such an image leave only once its pixels are cleaned. So, unless the user
asks (``--show-identifiers``), the case report and ``explain``'s ``overlay.png`` draw the maps on
a blank background instead of the image, and both say so in a warning (the report above its
finding, the CLI before the result, ``summary.json`` / ``case.json``). The maps stay: they are
what was asked for, computed at the model's resolution; the warning says they may still trace
the text.

Ultrasound, endoscopy, photographs and secondary captures very often carry burned-in text
without saying so: when the header leaves ``BurnedInAnnotation`` out, the image is drawn and a
warning asks the reader to check it before sharing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping

from medlens.data.formats.deid import pixel_identity_flags
from medlens.data.formats.dicom_kinds import SECONDARY_CAPTURE

__all__ = ["CODE", "PixelPrivacy", "blank_identifying_exemplars", "blank_rows", "check_words", "pixel_privacy",
           "pixels_identify", "pixels_unsure", "reference_privacy", "withheld_words"]

#: Code of the warning in ``summary.json`` / ``case.json`` and on the command line.
CODE = "identifying_pixels"

# Modalities whose pictures usually carry burned-in text (US ultrasound, ES endoscopy, XC external
# camera photography, OT other, SC / DOC captured screens and documents); and the Secondary
# Capture SOP classes (:data:`~medlens.data.formats.dicom_kinds.SECONDARY_CAPTURE` and its
# multi-frame variants .7.1-.7.4).
_ANNOTATED_MODALITIES = frozenset({"US", "ES", "XC", "OT", "SC", "DOC", "IVUS"})


@dataclass(frozen=True)
class PixelPrivacy:
    """``withhold``: draw no pixel of the scan; ``warning``: ``{code, message}`` or ``None``."""

    withhold: bool = False
    warning: dict[str, str] | None = None


def pixel_privacy(metadata: Mapping[str, Any], *, show_identifiers: bool = False) -> PixelPrivacy:
    """What the header ``metadata`` (``{keyword: text}``, a DICOM reader's) allows of its pixels."""
    flags = pixel_identity_flags(metadata)
    said = ", ".join(f"{k} YES" for k in flags)
    if flags and show_identifiers:
        return PixelPrivacy(False, _warning(
            f"The image's header says its pixels identify the patient ({said}): the image is shown because "
            "--show-identifiers was given; do not share this output beyond those who may see the patient's identity."))
    if flags:
        return PixelPrivacy(True, _warning(
            f"The image's header says its pixels identify the patient ({said}: a name, ID or face in the picture "
            "itself). The image is not shown: the maps are drawn on a blank background (they may still trace the "
            "text); --show-identifiers shows it."))
    modality = str(metadata.get("Modality", "")).strip().upper()
    capture = str(metadata.get("SOPClassUID", "")).startswith(SECONDARY_CAPTURE)
    if (modality in _ANNOTATED_MODALITIES or capture) and not str(metadata.get("BurnedInAnnotation", "")).strip():
        kind = "secondary-capture" if capture else modality
        return PixelPrivacy(False, _warning(
            f"This {kind} image may carry burned-in text naming the patient (its header does not say: "
            "BurnedInAnnotation is absent); check the picture before sharing this output."))
    return PixelPrivacy()


def _case_privacy(case: Any) -> PixelPrivacy:
    return pixel_privacy(getattr(getattr(case, "record", None), "metadata", None) or {})


def pixels_identify(case: Any) -> bool:
    """Whether a case as read (its ``record``'s header) must be drawn without its pixels."""
    return _case_privacy(case).withhold


def pixels_unsure(case: Any) -> bool:
    """Whether a case as read is drawn but may carry burned-in text its header does not declare (an
    ultrasound or secondary capture without ``BurnedInAnnotation``): the reader should check it."""
    found = _case_privacy(case)  # without --show-identifiers: a declared flag withholds, so a warning here is the check
    return not found.withhold and found.warning is not None


def reference_privacy(reference: Any, rows: Iterable[int]) -> tuple[list[int], list[int]]:
    """The ``rows`` of a reference set of scans (:class:`medlens.app.reference_cases.ReferenceSet`)
    whose pixels identify the patient, and those drawn although they may carry undeclared burned-in
    text (:func:`pixels_unsure`), each case's header read once; none for a data set (no headers)."""
    cases = getattr(reference, "cases", None)
    if cases is None or reference.names is None:
        return [], []
    identifying: list[int] = []
    unsure: list[int] = []
    for r in sorted(set(rows)):
        found = _case_privacy(cases.case(cases.names.index(reference.names[r])))
        if found.withhold:
            identifying.append(r)
        elif found.warning is not None:
            unsure.append(r)
    return identifying, unsure


def check_words(count: int, what: str) -> str:
    """The sentence that asks the reader to check ``count`` pictures of ``what`` for burned-in text."""
    return (f"Check before sharing ({count} {what}): ultrasound, endoscopy, photographs and secondary captures "
            "often carry burned-in text naming the patient, and these headers do not say (BurnedInAnnotation "
            "is absent); the pictures are drawn.")


def blank_rows(inputs: Any, rows: Iterable[int]) -> Any:
    """``inputs`` (a tensor of cases) with the cases at ``rows`` set to zeros (a copy; ``inputs``
    itself when there are none)."""
    rows = sorted(set(rows))
    if not rows:
        return inputs
    out = inputs.clone()
    out[rows] = 0
    return out


def withheld_words(count: int, what: str) -> str:
    """The sentence that says ``count`` pictures of ``what`` are drawn without their image."""
    return (f"Drawn without their image ({count} {what}): their headers say the pixels identify the patient "
            "(BurnedInAnnotation or RecognizableVisualFeatures YES); --show-identifiers shows them.")


def blank_identifying_exemplars(exemplars: dict[int, tuple[Any, Any]], case_of: Callable[[int], Any],
                                *, show_identifiers: bool = False) -> tuple[dict[int, tuple[Any, Any]], list[str]]:
    """An audit's exemplars (``{position: (input, map)}``) with the input of every case whose pixels
    identify its patient set to zeros (``case_of(position)``: the case as read), and the sentences
    that say how many, and how many drawn ones to check (:func:`check_words`); ``[]`` when none."""
    cases = {pos: case_of(pos) for pos in exemplars}
    blanked = [] if show_identifiers else [pos for pos, case in cases.items() if pixels_identify(case)]
    unsure = sum(pixels_unsure(case) for case in cases.values())
    said = ([withheld_words(len(blanked), "exemplar scan(s)")] if blanked else []) + (
        [check_words(unsure, "exemplar scan(s)")] if unsure else [])
    if not blanked:
        return exemplars, said
    out = {pos: ((x.new_zeros(x.shape) if pos in blanked else x), heat) for pos, (x, heat) in exemplars.items()}
    return out, said


def _warning(message: str) -> dict[str, str]:
    return {"code": CODE, "message": message}
