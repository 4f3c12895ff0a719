"""Where a clinical note names its patient: the character spans of identifiers written in free text.

:func:`identifier_spans` finds, by pattern, what a transcription typically carries: e-mail
addresses, telephone numbers, dates (``03/14/1961``, ``2024-02-11``, ``March 14, 1961``), record
numbers (``MRN 00482913``, ``SSN``, six or more digits in a row), street addresses and
``City, ST 01103``, and the names after a title or a label (``Dr. Maria Gonzalez``, ``Mr. Smith``,
``Patient John Smithers``, ``Name: ...``). It is a safeguard for what medlens writes (the words of
an explained note are shown as :data:`REDACTED` where they overlap a span, unless
``--show-identifiers``), not a de-identification tool: a name written without a title is not found.
"""

from __future__ import annotations

import re

__all__ = ["REDACTED", "identifier_spans"]

#: What an identifying word of a note is shown as.
REDACTED = "[identifier]"

_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?")
_NAME = r"[A-Z][A-Za-z'\-]+(?:\s+[A-Z]\.)?(?:\s+[A-Z][A-Za-z'\-]+){0,2}"
_STREET = (r"(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|"
           r"Terrace|Parkway|Pkwy|Highway|Hwy)\b\.?")

#: Patterns whose whole match, or its ``id`` group, identifies.
_PATTERNS = [re.compile(p) for p in (
    r"[\w.+\-]{1,64}@[\w\-]+(?:\.[\w\-]+)+",                                       # e-mail
    r"(?<![\w/])(?:\+?1[\s.\-]?)?(?:\(\d{3}\)|\d{3})[\s.\-]?\d{3}[\s.\-]\d{4}\b",  # telephone
    r"\b\d{1,2}[/\-.]\d{1,2}[/\-.](?:\d{4}|\d{2})\b",                             # 03/14/1961
    r"\b\d{4}-\d{2}-\d{2}\b",                                                     # 2024-02-11
    rf"\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}\b",                     # March 14, 1961
    rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}\s+\d{{4}}\b",                       # 14 March 1961
    r"(?i:\b(?:MRN|MR\s*#|medical\s+record(?:\s+(?:number|no\.?))?|SSN|account(?:\s+number)?|acct|"
    r"patient\s+id)\b\s*(?:#|:|number|no\.?)?\s*)(?P<id>[A-Za-z]*\d[\w\-]*)",     # MRN 00482913
    r"\b\d{3}-\d{2}-\d{4}\b",                                                     # social security number
    r"\b\d{6,}\b",                                                                # any long number
    rf"\b\d{{1,5}}\s+(?:[A-Z][A-Za-z]+\s+){{1,3}}{_STREET}",                      # 42 Elm Street
    r"\b[A-Z][A-Za-z]+(?:\s+[A-Z][A-Za-z]+){0,3},\s*[A-Z]{2}\s+\d{5}(?:-\d{4})?\b",  # Springfield, MA 01103
    rf"\b(?:Dr|Mr|Mrs|Ms|Miss|Prof)\.?\s+(?P<id>{_NAME})",                         # Dr. Maria Gonzalez
    rf"\b(?:[Pp]atient|[Nn]ame)\s*:?[ \t]+(?P<id>{_NAME})",                        # Patient John Smithers
)]


def identifier_spans(text: str) -> list[tuple[int, int]]:
    """Sorted, merged ``(start, end)`` character spans of ``text`` that may identify a person."""
    spans = []
    for pattern in _PATTERNS:
        for m in pattern.finditer(text):
            group = "id" if "id" in pattern.groupindex and m.group("id") else 0
            spans.append(m.span(group))
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged
