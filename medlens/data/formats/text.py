"""Clinical notes: a CSV or JSON Lines file of labelled notes, or one note in a ``.txt`` file.

:func:`read_notes` returns :class:`Notes`: the texts, their labels as words (class names), a case
id per note and, when the file has one, a group per note (a patient or study id, so that splits
keep a patient's notes together: :func:`split_by_group`). Every problem a user can cause is one
line (:class:`medlens.errors.FileFormatError` / :class:`~medlens.errors.InputError`): a missing
file, text that is not UTF-8 (with the byte offset), a missing column (the columns the file has
are listed), an empty note (its row numbers), a label missing where labels are required.

Column names are renameable (``text_column``, ``label_column``, ``case_column``,
``group_column``); ``case`` defaults to the row number (1-based, as a spreadsheet shows it).
"""

from __future__ import annotations

import csv
import io
import json
import os
import pathlib
from dataclasses import dataclass
from typing import Sequence

from medlens.core.random import generator
from medlens.errors import FileFormatError, InputError

#: Suffixes :func:`read_notes` understands.
NOTE_SUFFIXES = {".csv": "csv", ".tsv": "tsv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "txt"}


@dataclass(frozen=True)
class Notes:
    """Notes read from one file.

    Attributes
    ----------
    texts : tuple of str
        One note each, as written (no normalisation here: the tokenizer does that).
    labels : tuple of str or None
        The label of each note as a word (``"normal"``, ``"cardiomegaly"``), or None when the
        file has no label column (a ``.txt`` note, a file to predict on).
    cases : tuple of str
        Case id of each note (the ``case`` column, else the 1-based row number).
    groups : tuple of str or None
        Patient/study id of each note (the ``group`` column), or None.
    source : str
        The path read.
    skipped : tuple of int
        Row numbers of the empty notes left out (``skip_empty``), as the file counts them.
    rows : tuple of int
        Each note's row number, as the file counts them (empty for a ``.txt`` note).
    names : tuple of str or None
        The patient's name given beside each note (a column of :data:`NAME_COLUMNS`), or None:
        never shown, looked for in the note's text to hide it there
        (:func:`medlens.data.formats.text_identifiers.identifier_spans`).
    """

    texts: tuple[str, ...]
    labels: tuple[str, ...] | None
    cases: tuple[str, ...]
    groups: tuple[str, ...] | None = None
    source: str = ""
    skipped: tuple[int, ...] = ()
    rows: tuple[int, ...] = ()
    names: tuple[str, ...] | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def __repr__(self) -> str:
        return (
            f"Notes(n={len(self)}, labelled={self.labels is not None}, grouped={self.groups is not None}, "
            f"source={self.source!r})"
        )

    def class_names(self, names: Sequence[str] | None = None) -> tuple[str, ...]:
        """The class names: ``names`` in the order given (every label must be one), else the labels sorted."""
        if self.labels is None:
            raise InputError(f"{self.source or 'the notes'} have no labels")
        found = sorted(set(self.labels))
        if names is None:
            return tuple(found)
        names = tuple(str(n) for n in names)
        unknown = [lab for lab in found if lab not in names]
        if unknown:
            raise InputError(
                f"labels {', '.join(repr(u) for u in unknown[:5])} are not among the class names {', '.join(names)}"
            )
        return names

    def label_indices(self, class_names: Sequence[str]) -> list[int]:
        """Each note's label as an index into ``class_names``."""
        names = self.class_names(class_names)
        index = {n: i for i, n in enumerate(names)}
        return [index[lab] for lab in self.labels or ()]

    def subset(self, rows: Sequence[int]) -> "Notes":
        """The notes at ``rows`` (in that order)."""
        pick = lambda seq: None if seq is None else tuple(seq[i] for i in rows)  # noqa: E731
        return Notes(pick(self.texts), pick(self.labels), pick(self.cases), pick(self.groups), self.source,
                     self.skipped, pick(self.rows) if self.rows else (), pick(self.names))

    def copies(self) -> list[list[int]]:
        """Groups (two or more) of the positions of notes with the same text (white space and case
        aside): a note exported twice, often under two labels."""
        seen: dict[str, list[int]] = {}
        for i, text in enumerate(self.texts):
            seen.setdefault(_normalised(text), []).append(i)
        return [group for group in seen.values() if len(group) > 1]

    def skipped_statement(self) -> str:
        """One sentence on the empty notes left out, or ``""``."""
        if not self.skipped:
            return ""
        return (f"{len(self.skipped)} empty note{'s' if len(self.skipped) > 1 else ''} skipped "
                f"({_rows(self.skipped)} of the notes file)")


def _normalised(text: str) -> str:
    """A note's text with white space and case set aside (copies of a note compare equal)."""
    return " ".join(text.lower().split())


def note_digest(text: str) -> str:
    """A short one-way digest of a note's text (white space and case aside): a model file lists its
    training notes by these, so a command can tell a note it was trained on without storing text."""
    import hashlib

    return hashlib.sha256(_normalised(text).encode("utf-8")).hexdigest()[:16]


def _rows(numbers: Sequence[int]) -> str:
    """``row 3`` / ``rows 3, 7, ... and 4 more`` (at most 8 numbers)."""
    more = f" and {len(numbers) - 8} more" if len(numbers) > 8 else ""
    return f"row{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers[:8]))}{more}"


def _decode(raw: bytes, path: pathlib.Path) -> str:
    """UTF-8 (with or without a byte-order mark), or UTF-16 with its mark (Excel's "Unicode text")."""
    try:
        if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return raw.decode("utf-16")
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise FileFormatError(
            f"{path} is not UTF-8 text (byte {err.start}: {raw[err.start:err.start + 1]!r}); "
            "save it as UTF-8 (for example: iconv -f latin1 -t utf-8)"
        ) from err


def _column(header: Sequence[str], name: str | None, path: pathlib.Path, what: str, required: bool) -> str | None:
    if name is None:
        return None
    if name in header:
        return name
    lower = {h.lower().strip(): h for h in header}
    if name.lower() in lower:
        return lower[name.lower()]
    if required:
        other = next((sep for sep in (";", "\t", ",", "|") if len(header) == 1 and sep in header[0]), None)
        hint = f"; its one column holds {other!r}: is the file separated by {other!r}? (.csv: commas, .tsv: tabs)" if other else ""
        raise FileFormatError(
            f"{path} has no {what} column {name!r}; its columns are {', '.join(repr(h) for h in header)}"
            f" (rename with {what}_column=...){hint}"
        )
    return None


def _rows_csv(text: str, path: pathlib.Path, delimiter: str) -> tuple[list[str], list[dict[str, str]]]:
    _refuse_cut_off(text, path, delimiter)
    try:
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        header = [h for h in (reader.fieldnames or []) if h is not None]
        rows = [dict(r) for r in reader]
    except csv.Error as err:
        raise FileFormatError(f"{path} is not a readable CSV file ({err})") from err
    if not header:
        raise FileFormatError(f"{path} is empty: expected a header row with a text column")
    return header, rows


def _refuse_cut_off(text: str, path: pathlib.Path, delimiter: str) -> None:
    """Refuse a file that ends inside a quoted field (a download or export cut off mid-note): the
    lenient reader would return that last note cut short, and its row short of columns."""
    records = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    read = 0
    try:
        for read, _ in enumerate(records, 1):
            pass
    except csv.Error as err:
        if str(err).startswith("unexpected end of data"):
            raise FileFormatError(
                f"{path} ends inside a quoted field of row {read + 1} (the file is cut off, or a quote is not "
                "closed): that row's note would be cut short; complete the file or delete the row"
            ) from err  # other strict-mode complaints are read leniently, as before


def _rows_jsonl(text: str, path: pathlib.Path) -> tuple[list[str], list[dict[str, object]]]:
    rows: list[dict[str, object]] = []
    header: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise FileFormatError(f"{path} line {number} is not JSON ({err.msg})") from err
        if not isinstance(row, dict):
            raise FileFormatError(f"{path} line {number} is not a JSON object")
        rows.append(row)
        header.update(dict.fromkeys(row))
    if not rows:
        raise FileFormatError(f"{path} holds no notes")
    return list(header), rows


def _refuse_structures(rows: Sequence[dict], columns: Sequence[str | None], first_row: int, path: pathlib.Path) -> None:
    """Refuse a JSON list or object where a note, label, case or group is read (it would be read
    as its Python spelling, ``['kidney', 'stone']``)."""
    for number, row in enumerate(rows, first_row):
        for column in columns:
            value = row.get(column) if column is not None else None
            if isinstance(value, (list, dict)):
                kind = "list" if isinstance(value, list) else "object"
                raise FileFormatError(f"{path} line {number}: {column!r} holds a JSON {kind}, not text")


def _cell(row: dict, column: str | None) -> str | None:
    if column is None:
        return None
    value = row.get(column)
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


#: Column names (any case) of a notes file that give each note's patient name: read only to find
#: the name in the note's text (every capitalised occurrence of its words is then hidden). Not a
#: bare ``name``: it often names the document ("Discharge summary"), whose words would be hidden.
NAME_COLUMNS = ("patient_name", "patient name", "patientname", "patient", "full_name", "full name")


def read_notes(
    path: str | os.PathLike,
    *,
    text_column: str = "text",
    label_column: str | None = "label",
    case_column: str | None = "case",
    group_column: str | None = "group",
    require_labels: bool = False,
    allow_empty: bool = False,
    skip_empty: bool = False,
) -> Notes:
    """Read labelled notes from a CSV/TSV or JSON Lines file, or one note from a ``.txt`` file.

    Parameters
    ----------
    path : str or os.PathLike
        ``.csv``, ``.tsv``, ``.jsonl``/``.ndjson`` (one JSON object a line) or ``.txt`` (the whole
        file is one note, without a label).
    text_column, label_column, case_column, group_column : str
        Column (key) names; matched exactly, else case-insensitively. Only the text column must
        exist, unless ``require_labels``; ``None`` ignores that column.
    require_labels : bool
        Refuse a file without a label column or with a note whose label is empty (training).
    allow_empty : bool
        Keep empty notes (as ``""``) instead of refusing them.
    skip_empty : bool
        Leave empty notes out (their row numbers in :attr:`Notes.skipped`) instead of refusing them;
        a file whose every note is empty is still refused.

    Returns
    -------
    Notes

    Raises
    ------
    FileFormatError
        Missing or empty file, an unknown suffix, text that is not UTF-8, a missing column,
        malformed CSV/JSON.
    InputError
        Empty notes (row numbers listed; with ``skip_empty`` only when every note is empty), missing
        labels where required, duplicate case ids.
    """
    p = pathlib.Path(os.fspath(path)).expanduser()
    kind = NOTE_SUFFIXES.get(p.suffix.lower())
    if kind is None:
        raise FileFormatError(
            f"{p} is not a notes file medlens reads (.csv, .tsv, .jsonl, .ndjson with a text column, or a .txt note)"
        )
    if not p.is_file():
        raise FileFormatError(f"notes file not found: {p}")
    text = _decode(p.read_bytes(), p)
    if kind == "txt":
        if not text.strip() and not allow_empty:
            raise InputError(f"{p} is an empty note")
        if require_labels:
            raise InputError(f"{p} is one note without a label; training needs a CSV or JSON Lines file with labels")
        return Notes((text,), None, (p.stem,), None, str(p))
    if kind == "jsonl":
        header, rows = _rows_jsonl(text, p)
        first_row = 1
    else:
        header, rows = _rows_csv(text, p, "\t" if kind == "tsv" else ",")
        first_row = 2  # the header is row 1
    text_col = _column(header, text_column, p, "text", True)
    label_col = _column(header, label_column, p, "label", require_labels)
    case_col = _column(header, case_column, p, "case", False)
    group_col = _column(header, group_column, p, "group", False)
    name_col = next((h for h in header if h.strip().casefold() in NAME_COLUMNS
                     and h not in (text_col, label_col, case_col, group_col)), None)
    if not rows:
        raise FileFormatError(f"{p} has a header but no notes")
    _refuse_structures(rows, (text_col, label_col, case_col, group_col), first_row, p)
    texts = [_cell(r, text_col) or "" for r in rows]
    numbers = [first_row + i for i in range(len(rows))]  # each note's row, as the file counts them
    empty = [n for n, t in zip(numbers, texts) if not t.strip()]
    if empty and not allow_empty:
        if not skip_empty or len(empty) == len(rows):
            raise InputError(f"{p}: empty {text_col!r} in {_rows(empty)}"
                             + (" (every note is empty)" if skip_empty else ""))
        kept = [i for i, t in enumerate(texts) if t.strip()]
        rows, texts, numbers = [rows[i] for i in kept], [texts[i] for i in kept], [numbers[i] for i in kept]
    else:
        empty = []
    labels = None
    if label_col is not None:
        labels = [(_cell(r, label_col) or "").strip() for r in rows]
        missing = [n for n, lab in zip(numbers, labels) if not lab]
        if missing and require_labels:
            raise InputError(f"{p}: no {label_col!r} in row{'s' if len(missing) > 1 else ''} "
                             f"{', '.join(map(str, missing[:8]))}{' ...' if len(missing) > 8 else ''}")
        if missing:
            labels = None if len(missing) == len(labels) else labels
    cases = [(_cell(r, case_col) or "").strip() for r in rows] if case_col else []
    if not case_col or not all(cases):
        cases = [str(n) for n in numbers]
    elif len(set(cases)) != len(cases):
        seen: set[str] = set()
        dup = next(c for c in cases if c in seen or seen.add(c))
        raise InputError(f"{p}: case id {dup!r} appears more than once; case ids must be unique")
    groups = None
    if group_col is not None:
        groups = [(_cell(r, group_col) or "").strip() for r in rows]
        if not all(groups):
            raise InputError(f"{p}: some notes have an empty {group_col!r}; give every note its patient/group id")
    return Notes(
        tuple(texts), None if labels is None else tuple(labels), tuple(cases),
        None if groups is None else tuple(groups), str(p), tuple(empty), tuple(numbers),
        None if name_col is None else tuple(str(r.get(name_col) or "").strip() for r in rows),
    )


def split_by_group(
    keys: Sequence[str], *, val: float = 0.15, test: float = 0.15, seed: int = 0
) -> tuple[list[int], list[int], list[int]]:
    """Row indices of train, validation and test splits in which no group (patient) is split.

    Parameters
    ----------
    keys : sequence of str
        The group of each row (patient or study id); rows without groups pass their case ids.
    val, test : float
        Shares of the *groups* in the validation and test splits (each at least one group when
        the share is positive and there are three or more groups).
    seed : int
        Seeds the shuffle of the groups (:func:`medlens.core.random.generator`).
    """
    if not (0 <= val < 1 and 0 <= test < 1 and val + test < 1):
        raise InputError(f"split shares must be in [0, 1) with val + test < 1, got val={val}, test={test}")
    unique = sorted(set(keys))
    order = [unique[i] for i in _permutation(len(unique), seed)]
    n = len(order)
    n_test = max(1 if test > 0 and n >= 3 else 0, int(round(test * n)))
    n_val = max(1 if val > 0 and n >= 3 else 0, int(round(val * n)))
    test_groups, val_groups = set(order[:n_test]), set(order[n_test : n_test + n_val])
    train, valid, held = [], [], []
    for i, k in enumerate(keys):
        (held if k in test_groups else valid if k in val_groups else train).append(i)
    return train, valid, held


def _permutation(n: int, seed: int) -> list[int]:
    import torch

    return torch.randperm(n, generator=generator(seed, "split_by_group")).tolist()
