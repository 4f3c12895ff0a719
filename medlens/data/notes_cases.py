"""The cases of a notes file for a text model: one case per note, its token ids and its label.

:class:`NoteCases` is the :class:`medlens.data.cases.Cases` of a CSV / TSV / JSON Lines file of
notes (or one ``.txt`` note), read with :func:`medlens.data.formats.text.read_notes` and encoded by
the model's own tokenizer (:class:`medlens.data.tokenizer.NoteTokenizer`, stored in the model
file). A note longer than the tokenizer's ``max_length`` is truncated, and :attr:`NoteCases.truncation`
says how many were and by how much. Labels that are words are mapped to the model's class
names; a word the model does not know is an :class:`~medlens.errors.InputError`. Empty notes are left
out with a warning (:attr:`NoteCases.skipped` names their rows), unless every note is empty. The words
a note is shown by (:meth:`NoteCases.tokens`) hide its identifiers unless ``show_identifiers``.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import Sequence

import torch

from medlens.data.cases import Case, CaseBatch, Cases, pseudonym
from medlens.data.formats.text import NOTE_SUFFIXES, read_notes
from medlens.data.formats.text_identifiers import REDACTED, identifier_spans

__all__ = ["NoteColumns", "NoteCases", "is_notes_file"]


def is_notes_file(path: str | os.PathLike) -> bool:
    """``path`` has a suffix of a notes file (``.csv``, ``.tsv``, ``.jsonl``, ``.ndjson``, ``.txt``)."""
    return os.path.splitext(os.fspath(path))[1].lower() in NOTE_SUFFIXES


@dataclass(frozen=True)
class NoteColumns:
    """Column names of a notes file (``--text-column``, ``--label-column``; ``case`` and ``group``)."""

    text: str = "text"
    label: str | None = "label"
    case: str | None = "case"
    group: str | None = "group"

    def read(self, path: str | os.PathLike, *, require_labels: bool = False, skip_empty: bool = False):
        """The :class:`~medlens.data.formats.text.Notes` of ``path`` read with these columns."""
        return read_notes(path, text_column=self.text, label_column=self.label, case_column=self.case,
                          group_column=self.group, require_labels=require_labels, skip_empty=skip_empty)


class NoteCases(Cases):
    """The notes of one file as token ids ``(N, max_length)`` for a model with ``tokenizer``."""

    is_dataset = False
    has_masks = False
    has_markers = False

    def __init__(self, data: str | os.PathLike, tokenizer_json: str, class_names: Sequence[str],
                 columns: NoteColumns = NoteColumns(), *, show_identifiers: bool = False) -> None:
        """Notes are named ``case-0000``... by row and the file as ``N notes``, unless
        ``show_identifiers``: the file's own case ids (often MRNs) stay in ``identifiers``."""
        from medlens.data.tokenizer import NoteTokenizer

        self.data = os.fspath(data)
        self.show_identifiers = show_identifiers
        self.notes = columns.read(self.data, skip_empty=True)
        self.skipped = self.notes.skipped_statement()
        if self.skipped:
            warnings.warn(self.skipped, UserWarning, stacklevel=2)
        self.tokenizer = NoteTokenizer.from_json(tokenizer_json)
        self.class_names = tuple(class_names)
        self.identifiers = list(self.notes.cases)
        self.names = list(self.identifiers) if show_identifiers else [pseudonym(i) for i in range(len(self.identifiers))]
        self.has_labels = self.notes.labels is not None
        self.labels: list[int | None] = [None] * len(self.names)
        if self.has_labels:
            given = [i for i, word in enumerate(self.notes.labels or ()) if word]
            known = self.notes.subset(given).label_indices(self.class_names)  # an unknown word fails here
            for i, k in zip(given, known):
                self.labels[i] = k
        self.encoded = self.tokenizer.encode(self.notes.texts)
        self.truncation = self.encoded.statement()
        self.title = os.path.basename(self.data) if show_identifiers else f"{len(self.names)} note{'' if len(self.names) == 1 else 's'}"

    def truncation_of(self, first: int) -> str:
        """:attr:`truncation` over the ``first`` notes (those ``--limit`` uses); ``""`` when none of
        them lost tokens."""
        return self.encoded.statement(first) if bool(self.encoded.truncated[:first].any()) else ""

    def identifier_rows(self) -> list[dict[str, object]]:
        """One row per note for ``identifiers.csv``: ``case`` (the id outputs use), ``note`` (the
        file's own id) and ``row`` (as the file counts them: a CSV's header is row 1)."""
        rows = self.notes.rows or tuple(range(1, len(self.names) + 1))
        return [{"case": name, "note": note, "row": row} for name, note, row in zip(self.names, self.identifiers, rows)]

    def load(self, indices: Sequence[int]) -> CaseBatch:
        indices = [int(i) for i in indices]
        x = self.encoded.ids[torch.as_tensor(indices, dtype=torch.long)]
        return CaseBatch(x, [self.labels[i] for i in indices], None, indices, [self.names[i] for i in indices])

    def case(self, index: int) -> Case:
        from medlens.errors import InputError

        if not 0 <= index < len(self):
            raise InputError(f"index {index} is out of range: {self.title} has {len(self)} notes (0..{len(self) - 1})")
        return Case(self.encoded.ids[index : index + 1], self.labels[index], f"note {self.names[index]} of {self.title}",
                    note=self.encoded.note_statement(index), name=self.names[index], path=self.data)

    def shown_vocabulary(self, n: int | None = None) -> list[str]:
        """The model's vocabulary as outputs may show it: a word read mostly from identifiers in the
        first ``n`` notes (at least half of its occurrences inside a name after a title, a record
        number, a date) is ``[identifier ID]`` unless ``show_identifiers``: a doctor's name in every
        note of a class is a vocabulary word; "patient", once inside "Mr. Sample Patient", is not hidden."""
        vocabulary = [self.tokenizer.token(i) for i in range(self.tokenizer.vocab_size)]
        if self.show_identifiers:
            return vocabulary
        seen, inside = Counter(), Counter()
        for index in range(len(self) if n is None else min(n, len(self))):
            _, shown = self.tokens(index)
            ids = self.encoded.ids[index, : len(shown)].tolist()
            seen.update(ids)
            inside.update(i for i, word in zip(ids, shown) if word == REDACTED)
        for token_id, count in inside.items():
            if 2 * count >= seen[token_id] and token_id > self.tokenizer.deid_id and any(
                    ch.isalnum() for ch in vocabulary[token_id]):
                vocabulary[token_id] = f"{REDACTED[:-1]} {token_id}]"
        return vocabulary

    def tokens(self, index: int) -> tuple[list[str], list[str]]:
        """The vocabulary tokens and the note's own words at the real positions of note ``index``;
        a position read from an identifier in the note's text (a name, a date, a record number,
        :func:`~medlens.data.formats.text_identifiers.identifier_spans`; the patient's name of a
        name column, :data:`~medlens.data.formats.text.NAME_COLUMNS`, wherever it is written) is
        ``[identifier]`` in both, unless ``show_identifiers``."""
        tokens, words = self.encoded.tokens[index], self.encoded.words[index]
        if self.show_identifiers:
            return tokens, words
        spans = identifier_spans(self.notes.texts[index], self.notes.names[index:index + 1] if self.notes.names else ())
        hidden = [any(a < end and start < b for start, end in spans) for a, b in self.encoded.offsets[index]]
        return ([REDACTED if h else t for t, h in zip(tokens, hidden)],
                [REDACTED if h else w for w, h in zip(words, hidden)])
