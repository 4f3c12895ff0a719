"""Notes as the input of a use case: the one place a command turns a notes file and a text model into cases.

A text model carries its tokenizer in ``meta["tokenizer"]`` (``medlens train --data notes.csv``);
:func:`note_cases` opens a notes file (CSV / TSV / JSON Lines, or a ``.txt`` note) for it,
:func:`note_set` gives the labelled notes as a :class:`~medlens.data.datasets.LabelledSet` of token
ids (for the attention tests), and :func:`vocabulary` the token of every id (for pictures).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from medlens.data.datasets.labelled import LabelledSet
from medlens.data.notes_cases import NoteCases, NoteColumns, is_notes_file
from medlens.errors import InputError

__all__ = ["is_text_model", "note_cases", "note_set", "vocabulary"]


def is_text_model(meta: dict[str, Any]) -> bool:
    """The model reads token ids through a tokenizer stored in its file."""
    return bool(meta.get("tokenizer"))


def note_cases(data: str, meta: dict[str, Any], columns: NoteColumns = NoteColumns(), *,
               show_identifiers: bool = False) -> NoteCases:
    """The notes of ``data`` encoded by the text model's own tokenizer (named by row unless
    ``show_identifiers``: :class:`~medlens.data.notes_cases.NoteCases`)."""
    if not is_notes_file(data):
        raise InputError(f"{data} is not a notes file: a text model reads .csv, .tsv, .jsonl or .txt notes")
    return NoteCases(data, meta["tokenizer"], tuple(meta.get("class_names") or ()), columns,
                     show_identifiers=show_identifiers)


def untrained_rows(cases: NoteCases, meta: dict[str, Any]) -> list[int]:
    """The positions of the notes of ``cases`` the model was not trained on (by the digests of its
    training notes in ``meta["text"]["training_notes"]``; every note for a model file without them)."""
    from medlens.data.formats.text import note_digest

    trained = set((meta.get("text") or {}).get("training_notes") or ())
    return [i for i, text in enumerate(cases.notes.texts) if note_digest(text) not in trained]


def note_set(cases: NoteCases, name: str | None = None, rows: Sequence[int] | None = None) -> LabelledSet:
    """The labelled notes of ``cases`` (of ``rows`` only, when given) as token ids ``(N, L)``
    (unlabelled notes left out)."""
    rows = [i for i in (range(len(cases.labels)) if rows is None else rows) if cases.labels[i] is not None]
    if not rows:
        raise InputError(f"{cases.data} has no labelled notes (give a label column)")
    idx = torch.tensor(rows, dtype=torch.long)
    labels = torch.tensor([cases.labels[i] for i in rows], dtype=torch.long)
    return LabelledSet(cases.encoded.ids[idx], labels, None, name or cases.title, cases.class_names)


def vocabulary(cases: NoteCases) -> tuple[str, ...]:
    """The token of every id of the model's vocabulary, those read from identifiers in the notes
    hidden unless ``cases`` show identifiers (:meth:`~medlens.data.notes_cases.NoteCases.shown_vocabulary`)."""
    return tuple(cases.shown_vocabulary())
