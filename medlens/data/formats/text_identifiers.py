"""Where a clinical note names its patient: the character spans of identifiers written in free text.

:func:`identifier_spans` finds, by pattern, what a transcription typically carries: e-mail
addresses, telephone numbers, dates (``03/14/1961``, ``2024-02-11``, ``March 14, 1961``), record
numbers (``MRN 00482913``, ``SSN``, six or more digits in a row), street addresses and
``City, ST 01103``, and the names after a title or a label (``Dr. Maria Gonzalez``, ``Mr. Smith``,
``Patient John Smithers``, ``Name: ...``). A name written without a title is found when it starts
with a common given name (``seen with John Smith``, ``Smith, John``: :data:`GIVEN_NAMES`, 3,000 US
given names less those that are also words, from ``given_names.txt``), and once a note names a
person, or the caller knows the patient's name (``names``, e.g. a notes file's name column), every
other capitalised occurrence of the name's words is found too (``Smithers was seen``).

It is a safeguard for what medlens writes (the words of an explained note are shown as
:data:`REDACTED` where they overlap a span, unless ``--show-identifiers``), not a de-identification
tool: a name that starts with a rare given name, or a surname alone, in a note that names no one
else, is not found. Every pattern takes time linear in the text.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from pathlib import Path
from typing import Iterable

__all__ = ["GIVEN_NAMES", "REDACTED", "identifier_spans"]

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


#: Patterns whose ``id`` group is a person's name, its words then looked for everywhere: after a
#: title always; after a label (``Name:``) when two words or more, as a label also heads a drug's
#: or a device's one-word name ("Generic Name: Lisinopril", "Model Name: Sigma").
_TITLED, _LABELLED = _PATTERNS[-2], _PATTERNS[-1]

# A given name and a capitalised word (``John Smith``, ``John A. Smith``) and a surname, comma, given
# name (``Smith, John``), tried at every word (zero-width: overlapping pairs are all seen); the word
# lengths are bounded, so each try is too.
_L = r"[^\W\d_]"  # a letter of any alphabet (José García, Zoë Müller): case is checked in code
_SURNAME = rf"{_L}(?:{_L}|['\-]){{1,30}}"
_GIVEN_FIRST = re.compile(rf"\b(?=(?P<given>{_L}{{3,15}})\s+(?:{_L}\.\s+)?(?P<other>{_SURNAME})(?!\w))")
_SURNAME_FIRST = re.compile(rf"\b(?=(?P<other>{_SURNAME}),[ \t]+(?P<given>{_L}{{3,15}})(?!\w)(?P<after>[ \t]+{_L})?)")
_WORD = re.compile(rf"{_L}(?:{_L}|['\-])*")

#: Capitalised words that follow a given name without making it a person's name (an eponym's
#: disease, sign or instrument), and words a label may capture that are no name.
_NOT_NAMES = frozenset("""
Disease Syndrome Sign Signs Test Tests Stage Stages Scale Score Catheter Catheters Clamp Clamps Tear Fracture Procedure
Maneuver Criteria Classification Type Types Tube Tubes Retractor Retractors Forceps Stitch Suture Sutures Drain Drains
Reflex Phenomenon Technique Needle Operation Nerve Repair Hernia Incision Position Palsy Disorder Deformity Lesion Ulcer
Name Patient Patients Date Dates Age Sex History Information Number Unknown The This That These Those And With Was Were
He She His Her They Their Him Mr Mrs Ms Miss Dr Prof Doctor Hospital Clinic Center Medical
""".split())


@functools.cache
def _given_names() -> frozenset[str]:
    lines = (Path(__file__).with_name("given_names.txt").read_text(encoding="utf-8")).splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


class _GivenNames:
    """The bundled given names (``given_names.txt``), read on first use."""

    def __contains__(self, name: object) -> bool:
        return name in _given_names()

    def __len__(self) -> int:
        return len(_given_names())


#: Common US given names (``"John" in GIVEN_NAMES``), read from ``given_names.txt`` on first use.
GIVEN_NAMES = _GivenNames()


def _name_spans(text: str) -> Iterable[tuple[int, int]]:
    """Given name + surname and surname, given name pairs (``Smith, John`` not inside a list: no
    lower-case word follows, as in "Steri-Strips, Owen silk")."""
    for pattern in (_GIVEN_FIRST, _SURNAME_FIRST):
        for m in pattern.finditer(text):
            given, other = m.group("given"), m.group("other")
            if pattern is _SURNAME_FIRST and m.group("after") and m.group("after").strip().islower():
                continue
            if (given[0].isupper() and given[1:].islower() and other[0].isupper() and other[1].islower()
                    and _folded(given) in GIVEN_NAMES and other not in _NOT_NAMES):
                yield min(m.start("given"), m.start("other")), max(m.end("given"), m.end("other"))


def _folded(word: str) -> str:
    """``word`` without its accents (José -> Jose), as the list spells names."""
    return "".join(c for c in unicodedata.normalize("NFKD", word) if not unicodedata.combining(c))


def _name_words(names: Iterable[str]) -> set[str]:
    """The words of person names worth looking for alone: three letters or more, not a label's word."""
    words = set()
    for name in names:
        for w in _WORD.findall(name):
            if len(w) >= 3 and w.capitalize() not in _NOT_NAMES:
                words.add(w.casefold())
    return words


def identifier_spans(text: str, names: Iterable[str] = ()) -> list[tuple[int, int]]:
    """Sorted, merged ``(start, end)`` character spans of ``text`` that may identify a person.

    ``names``: the patient's (or anyone's) names known from elsewhere (a header, a notes file's
    column); every capitalised occurrence of their words is found, as are the words of every
    name the note itself gives."""
    spans = []
    found_names = list(names)
    for pattern in _PATTERNS:
        for m in pattern.finditer(text):
            group = "id" if "id" in pattern.groupindex and m.group("id") else 0
            spans.append(m.span(group))
            if group == "id" and (pattern is _TITLED or (pattern is _LABELLED and len(m.group("id").split()) > 1)):
                found_names.append(m.group("id"))
    for a, b in _name_spans(text):
        spans.append((a, b))
        found_names.append(text[a:b])
    words = _name_words(found_names)
    if words:
        spans += [m.span() for m in _WORD.finditer(text) if m.group()[0].isupper() and m.group().casefold() in words]
    merged: list[tuple[int, int]] = []
    for a, b in sorted(spans):
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged
