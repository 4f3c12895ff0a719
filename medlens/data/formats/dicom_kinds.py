"""What a DICOM object in a PACS or CD export is, when it is not an image to predict on.

An export holds, beside the diagnostic series, objects that carry no image a model can read
(structured reports such as the dose report, presentation states, key object selections, RT
structure sets and plans, segmentations, encapsulated PDFs, raw data) and images that are not
diagnostic (a CT scout or MR localizer). :func:`not_a_case` names them by kind, from the header
alone, so that a folder walk skips them and counts them by kind, never by file or patient name.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["SECONDARY_CAPTURE", "not_a_case"]

#: SOP classes, or their prefixes (ending in "."), of objects that hold no image, by kind.
_NON_IMAGE_CLASSES: tuple[tuple[str, str], ...] = (
    ("1.2.840.10008.5.1.4.1.1.88.67", "dose report (SR)"),
    ("1.2.840.10008.5.1.4.1.1.88.68", "dose report (SR)"),
    ("1.2.840.10008.5.1.4.1.1.88.59", "key object selection (KO)"),
    ("1.2.840.10008.5.1.4.1.1.88.", "structured report (SR)"),
    ("1.2.840.10008.5.1.4.1.1.11.", "presentation state (PR)"),
    ("1.2.840.10008.5.1.4.1.1.481.3", "RT structure set"),
    ("1.2.840.10008.5.1.4.1.1.481.5", "RT plan"),
    ("1.2.840.10008.5.1.4.1.1.481.8", "RT plan"),
    ("1.2.840.10008.5.1.4.1.1.66.4", "segmentation (SEG)"),
    ("1.2.840.10008.5.1.4.1.1.66.7", "segmentation (SEG)"),
    ("1.2.840.10008.5.1.4.1.1.66", "raw data"),
    ("1.2.840.10008.5.1.4.1.1.66.", "registration or fiducials"),
    ("1.2.840.10008.5.1.4.1.1.104.", "encapsulated document (PDF, CDA)"),
)

#: Modalities of objects that hold no image, for files whose SOP class is missing or private.
_NON_IMAGE_MODALITIES = {"SR": "structured report (SR)", "PR": "presentation state (PR)",
                         "KO": "key object selection (KO)", "RTSTRUCT": "RT structure set", "RTPLAN": "RT plan",
                         "SEG": "segmentation (SEG)", "DOC": "encapsulated document (PDF, CDA)"}


#: Words of a series description that name a scout or localizer (CT scout/topogram, MR localizer,
#: pilot, Philips survey), whole words in any case: MR localizers' ImageType rarely says LOCALIZER.
_SCOUT_WORDS = re.compile(r"\b(localizer|localiser|scout|topogram|scanogram|surview|survey|pilot|locator)s?\b", re.I)


#: Secondary capture SOP classes (single and multi-frame) and how a screen grab was converted:
#: a workstation's screen (WSD) or a synthetic picture (SYN). Real radiographs stored as secondary
#: capture (RSNA Pneumonia: greyscale, WSD) stay cases: only an RGB one is read as a screen grab,
#: and only when its Modality names no imaging modality (other, secondary capture, or none): a
#: legacy ultrasound (or angiography, endoscopy) export stores its real frames as RGB WSD captures.
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"  # the prefix of every secondary-capture SOP class
_SCREEN_CONVERSIONS = {"WSD", "SYN"}
_NO_IMAGING_MODALITY = {"", "OT", "SC"}


def _screen_capture(ds: Any, sop: str, image_type: set[str], modality: str) -> bool:
    """``ds`` is a picture of a screen: its ImageType says SCREEN SAVE, or it is an RGB secondary
    capture of no imaging modality (``Modality`` OT, SC or none) converted from a workstation's
    screen or drawn (``ConversionType`` WSD or SYN)."""
    if "SCREEN SAVE" in image_type:
        return True
    colour = str(ds.get("PhotometricInterpretation", "") or "").strip().upper() not in ("", "MONOCHROME1", "MONOCHROME2")
    return (sop.startswith(SECONDARY_CAPTURE) and colour and modality in _NO_IMAGING_MODALITY
            and str(ds.get("ConversionType", "") or "").strip().upper() in _SCREEN_CONVERSIONS)


def not_a_case(ds: Any) -> str | None:
    """The kind of the DICOM object ``ds`` (a header) when it is not an image to predict on:
    a non-image object (by SOP class, else by modality) or a scout/localizer (``ImageType``
    holds ``LOCALIZER``, or the series description names one); ``None`` for an image."""
    meta = getattr(ds, "file_meta", None)
    sop = str(ds.get("SOPClassUID", "") or getattr(meta, "MediaStorageSOPClassUID", "") or "")
    for uid, kind in _NON_IMAGE_CLASSES:
        if sop == uid or (uid.endswith(".") and sop.startswith(uid)):
            return kind
    modality = str(ds.get("Modality", "") or "").strip().upper()
    if modality in _NON_IMAGE_MODALITIES:
        return _NON_IMAGE_MODALITIES[modality]
    image_type = ds.get("ImageType") or []
    values = {str(v).strip().upper() for v in (image_type.split("\\") if isinstance(image_type, str) else image_type)}
    if "LOCALIZER" in values or _SCOUT_WORDS.search(str(ds.get("SeriesDescription", "") or "")):
        return "scout/localizer"
    if _screen_capture(ds, sop, values, modality):
        return "screen capture (secondary capture of a screen)"
    return None
