"""Which annotation labels a picture or report may show: EDF+ annotations are free text.

A WFDB beat or rhythm symbol (``N``, ``V``, ``(AFIB``) names a finding, but an EDF+ annotation is
whatever the recording software or a technician typed, and may name a patient, a clinician or a
date ("Pt J. Smith asleep", "Dr Lee 03/04"). Pictures and reports show an annotation's text when it
is a short code or a known event word (sleep stages, apnoea, arousal, lights, seizure, the EEG
motor-imagery ``T0``-``T2`` ...), and ``event`` for anything else unless identifiers are asked for
(``--show-identifiers``). Training reads the texts as they are: only what is shown is withheld.
"""

from __future__ import annotations

import re

__all__ = ["WITHHELD", "shown_label"]

WITHHELD = "event"

#: a WFDB annotation symbol (one character: N L R B A a J S V r F e j n E / f Q ? | ~ + s T * D " = p ^ t u `
#: ' @ x ! [ ] ( )), a rhythm code ('(AFIB', '(N'), an EEG event code ('T0'..'T9'): never a name
_CODE = re.compile(r"^([A-Za-z/?|~+*\"=^`'@!\[\]()]|\([A-Z]{1,6}\d?|T\d)$")
_EVENTS = re.compile(
    r"^(sleep stage \w{1,2}|stage \w{1,2}|n[1-4]|w|r|(obstructive |central |mixed )?(apnea|apnoea|hypopnea|hypopnoea)|"
    r"arousal( \w+)?|(oxygen )?desaturation|lights (on|off)|recording (starts|ends)|movement( time)?|seizure( \w+)?|"
    r"spike( \w+)?|artifact|artefact|eyes (open|opened|closed)|rest|event|start|end|wake|rem|nrem|"
    r"limb movement|snore|body position( \w+)?|bad data|calibration|photic( \w+)?|hyperventilation( \w+)?)$",
    re.IGNORECASE,
)


def shown_label(text: str, show_identifiers: bool = False) -> str:
    """``text`` when it may be shown (a short code, a known event word, or identifiers asked for),
    else :data:`WITHHELD`."""
    text = str(text).strip()
    if show_identifiers or _CODE.match(text) or _EVENTS.match(" ".join(text.split())):
        return text
    return WITHHELD
