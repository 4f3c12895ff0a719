"""Train a text model on a notes file: ``medlens train --data notes.csv``.

The notes (CSV / TSV / JSON Lines with a text and a label column; optional ``case`` and ``group``)
are split 70/15/15 by group (a patient or study id: no group in two splits; without a group
column every note is its own group) with :func:`medlens.data.formats.text.split_by_group`; the
tokenizer (:class:`medlens.data.tokenizer.NoteTokenizer`, word level, lower-cased,
de-identification placeholders as one token) is learnt from the training notes only and stored
in the model file (``meta["tokenizer"]``); notes longer than ``max_length`` tokens are truncated
and the model file says how many were; notes that are copies of one another (same text) are
named in a warning (:func:`copies_warning`). The validation notes' shares of unknown words are stored
as the familiarity reference (:mod:`medlens.evaluation.note_familiarity`). The architecture is the attention BiGRU (``attention-rnn``) or a small transformer encoder
(``transformer``, :mod:`medlens.models.text_transformer`).
"""

from __future__ import annotations

from typing import Any

import torch

from medlens.app.recipes import Trained
from medlens.app.train_splits import train_on_splits
from medlens.data.formats.text import Notes, note_digest, split_by_group
from medlens.data.notes_cases import NoteColumns
from medlens.data.tokenizer import NoteTokenizer
from medlens.errors import InputError
from medlens.evaluation.note_familiarity import note_familiarity_reference

__all__ = ["TEXT_ARCHS", "train_on_notes"]

#: Architectures that read token ids.
TEXT_ARCHS = ("attention-rnn", "transformer")
SHARES = (0.15, 0.15)  # validation, test: shares of the groups


def train_on_notes(request: Any, progress: Any) -> Trained:
    """Train on the notes file ``request.data`` (a :class:`medlens.app.train.TrainRequest`)."""
    arch = request.arch or "attention-rnn"
    if arch not in TEXT_ARCHS:
        raise InputError(f"--arch {arch} does not read text; notes train {' or '.join(TEXT_ARCHS)}")
    columns = NoteColumns(text=request.text_column, label=request.label_column)
    notes = columns.read(request.data, require_labels=True)
    names = notes.class_names(request.names() or None)
    if len(set(notes.labels or ())) < 2:
        raise InputError(f"{request.data}: every note has the label {notes.labels[0]!r}; give notes of two classes or more")
    keys = notes.groups if notes.groups is not None else notes.cases
    parts = dict(zip(("train", "val", "test"), split_by_group(keys, val=SHARES[0], test=SHARES[1], seed=request.seed)))
    subsets = {split: notes.subset(rows) for split, rows in parts.items()}
    tokenizer = NoteTokenizer.train(subsets["train"].texts, max_vocab=request.max_vocab, min_frequency=2,
                                    max_length=request.max_length)
    splits, truncation = {}, {}
    for split, subset in subsets.items():
        if not len(subset):
            raise InputError(f"the {split} split is empty: {request.data} has too few notes (or groups) to split")
        encoded = tokenizer.encode(subset.texts)
        splits[split] = (encoded.ids, torch.tensor(subset.label_indices(names), dtype=torch.long))
        truncation[split] = encoded.statement()
    trained = train_on_splits(arch, splits, names, data=str(request.data), epochs=request.epochs, seed=request.seed,
                              progress=progress)
    trained.meta.update(
        familiarity=note_familiarity_reference(splits["val"][0], unknown_id=tokenizer.unk_id, padding_id=tokenizer.pad_id),
        tokenizer=tokenizer.to_json(), class_names=list(names), input_kind="notes",
        text={"text_column": request.text_column, "label_column": request.label_column,
              "max_length": tokenizer.max_length, "vocabulary": tokenizer.vocab_size, "truncation": truncation,
              "split": "by group" if notes.groups is not None else "by note",
              "training_notes": sorted({note_digest(t) for t in subsets["train"].texts})},
        cases={split: len(subset) for split, subset in subsets.items()},
        split_positions={split: list(rows) for split, rows in parts.items()},  # 0-based rows of the file
    )
    copied = copies_warning(notes, parts)
    if copied:
        trained.warning = "\n".join(w for w in (trained.warning, copied) if w)
    trained.notes.append(f"notes: vocabulary of {tokenizer.vocab_size} tokens learnt from the {len(subsets['train'])} "
                         f"training notes; {truncation['train']}")
    return trained


def copies_warning(notes: Notes, parts: dict[str, list[int]]) -> str | None:
    """One sentence on the notes that are copies of one another (same text), how many carry
    different labels and how many copies lie in different splits (a test score on notes trained on)."""
    groups = notes.copies()
    if not groups:
        return None
    split_of = {row: split for split, rows in parts.items() for row in rows}
    labels = notes.labels or ()
    clashing = [g for g in groups if len({labels[i] for i in g}) > 1]
    across = [g for g in groups if len({split_of[i] for i in g}) > 1]
    rows = notes.rows or tuple(range(1, len(notes) + 1))
    example = groups[0] if not clashing else clashing[0]
    return (f"{sum(map(len, groups))} notes are copies of another ({len(groups)} distinct text{'s' * (len(groups) > 1)}, "
            f"e.g. rows {', '.join(str(rows[i]) for i in example[:3])}): {len(clashing)} with different labels, "
            f"{len(across)} in more than one split (the validation and test scores then count notes the model "
            "trained on); keep one copy of each, with its right label")
