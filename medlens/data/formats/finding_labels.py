"""Multi-label labels of a folder of scans: which findings each case has, from a CSV in one of two layouts.

* NIH ChestX-ray14's (``Data_Entry_2017.csv``): a ``Finding Labels`` column naming the case's
  findings separated by ``|`` (``Effusion|Mass``), ``No Finding`` for none. The findings are every
  name the column uses, sorted.
* One column per finding (CheXpert's): every column other than the case, the patient and the
  tables' descriptive columns (:data:`DESCRIPTIVE_COLUMNS`: CheXpert's ``Sex``, ``Age``,
  ``Frontal/Lateral``, ``AP/PA``, ...) holds 1 (present), 0 (absent), -1 (uncertain) or nothing, in
  the column order. CheXpert's ``1.0``,
  ``0.0``, ``-1.0`` are read too.

The case column is ``case`` (as in ``case,label``) or NIH's ``Image Index`` / CheXpert's ``Path``;
the patient column, which keeps a patient's cases in one split, is ``group`` or NIH's ``Patient
ID``. A CSV with a ``label`` column is the single-label layout (:func:`is_findings_table` tells).

Uncertain (-1) and blank are read as absent (0): CheXpert's blank means the report did not mention
the finding, and reading "uncertain" as absent is the "U-Zeros" policy of Irvin et al. (AAAI 2019),
which keeps every case and every finding; :attr:`FindingTable.uncertain` and :attr:`FindingTable.blank`
count them so that the user is told how many were read so.
"""

from __future__ import annotations

import csv
import os
import pathlib
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from medlens.data.formats.folders import no_case_named
from medlens.errors import FileFormatError, InputError

__all__ = ["FindingTable", "is_findings_table", "read_finding_table"]

NIH_FINDINGS = "Finding Labels"
NO_FINDING = "No Finding"
CASE_COLUMNS = ("case", "Image Index", "Path")
GROUP_COLUMNS = ("group", "Patient ID")
#: Columns of the public chest X-ray tables that describe the case, not a finding (CheXpert's
#: ``Sex``, ``Age``, ``Frontal/Lateral``, ``AP/PA``; NIH's follow-up, age, gender, view and pixel
#: columns; MIMIC-CXR's ids): never read as findings in the one-column-per-finding layout.
DESCRIPTIVE_COLUMNS = frozenset({
    "Sex", "Age", "Frontal/Lateral", "AP/PA", "Follow-up #", "Patient Age", "Patient Gender", "View Position",
    "OriginalImage[Width", "Height]", "OriginalImagePixelSpacing[x", "y]", "subject_id", "study_id", "dicom_id",
    "split", "ViewPosition",
})
VALUES = {"1": 1.0, "1.0": 1.0, "0": 0.0, "0.0": 0.0, "-1": 0.0, "-1.0": 0.0, "": 0.0}


@dataclass(frozen=True)
class FindingTable:
    """The findings of the cases ``names``: ``matrix`` ``(N, K)`` float32 0/1 (rows of unlisted cases
    are 0 and ``labelled`` False), the findings' names, each case's patient (``None`` without a
    patient column), the layout read, and how many uncertain (-1) and blank values were read as 0."""

    matrix: np.ndarray
    labelled: list[bool]
    findings: tuple[str, ...]
    groups: list[str | None] | None
    layout: str
    uncertain: int = 0
    blank: int = 0
    without_file: int = 0


def _header(path: pathlib.Path) -> list[str]:
    if not path.is_file():
        raise FileFormatError(f"labels file {path} not found")
    with open(path, newline="", encoding="utf-8-sig") as fh:
        return [h.strip() for h in next(csv.reader(fh), [])]


def is_findings_table(path: str | os.PathLike) -> bool:
    """Whether the labels CSV gives several findings per case (NIH's ``Finding Labels`` column, or a
    case column and no ``label`` column) rather than one class per case (``case,label``)."""
    header = _header(pathlib.Path(os.fspath(path)))
    return NIH_FINDINGS in header or ("label" not in header and any(c in header for c in CASE_COLUMNS))


def read_finding_table(path: str | os.PathLike, names: Sequence[str]) -> FindingTable:
    """The findings of the cases ``names`` (their paths in the folder) from the CSV ``path``.

    Rows naming no case of ``names`` are left out and counted (``without_file``: NIH's full
    ``Data_Entry_2017.csv`` beside a folder holding some of its images); the findings are those the
    kept rows use.

    Raises
    ------
    FileFormatError
        No case column, or no finding column.
    InputError
        A case listed twice, a value other than 1/0/-1/blank, ``No Finding``
        given with a finding, a case without findings in the NIH layout.
    """
    p = pathlib.Path(os.fspath(path)).expanduser()
    header = _header(p)
    case_col = next((c for c in CASE_COLUMNS if c in header), None)
    if case_col is None:
        raise FileFormatError(f"labels file {p.name} needs a case column ({', '.join(CASE_COLUMNS)}); it has "
                              f"{', '.join(header)}")
    group_col = next((c for c in GROUP_COLUMNS if c in header), None)
    with open(p, newline="", encoding="utf-8-sig") as fh:
        rows = [{(k or "").strip(): (v or "").strip() for k, v in row.items()} for row in csv.DictReader(fh)]
    known = {n: i for i, n in enumerate(names)}
    labelled = [False] * len(names)
    groups: list[str | None] | None = [None] * len(names) if group_col else None
    order: list[int] = []
    kept: list[dict[str, str]] = []
    for row in rows:
        case = row.get(case_col, "")
        if case not in known:
            continue
        kept.append(row)
        i = known[case]
        if labelled[i]:
            raise InputError(f"labels file {p.name} lists case {case!r} twice")
        labelled[i] = True
        order.append(i)
        if groups is not None:
            groups[i] = row.get(group_col) or None
    if rows and not kept:
        raise no_case_named(p.name, rows[0].get(case_col, ""), len(names))
    if NIH_FINDINGS in header:
        matrix, findings = _nih(p.name, kept, case_col)
        layout, uncertain, blank = "NIH 'Finding Labels' (names separated by '|')", 0, 0
    else:
        columns = [c for c in header if c and c not in (case_col, group_col) and c not in DESCRIPTIVE_COLUMNS]
        matrix, uncertain, blank = _per_column(p.name, kept, case_col, columns)
        findings, layout = tuple(columns), "one 0/1 column per finding"
    full = np.zeros((len(names), len(findings)), dtype=np.float32)
    full[order] = matrix
    return FindingTable(full, labelled, findings, groups, layout, uncertain, blank, len(rows) - len(kept))


def _nih(name: str, rows: list[dict[str, str]], case_col: str) -> tuple[np.ndarray, tuple[str, ...]]:
    per_case = []
    for row in rows:
        found = {f.strip() for f in row.get(NIH_FINDINGS, "").split("|") if f.strip()}
        if not found:
            raise InputError(f"labels file {name}: case {row[case_col]!r} has an empty {NIH_FINDINGS!r} "
                             f"(write {NO_FINDING!r} for a case without findings)")
        if NO_FINDING in found and len(found) > 1:
            raise InputError(f"labels file {name}: case {row[case_col]!r} has {NO_FINDING!r} together with findings")
        per_case.append(found - {NO_FINDING})
    findings = tuple(sorted(set().union(*per_case), key=str.lower))
    if not findings:
        raise InputError(f"labels file {name}: every case has {NO_FINDING!r}; a multi-label model needs findings")
    column = {f: k for k, f in enumerate(findings)}
    matrix = np.zeros((len(rows), len(findings)), dtype=np.float32)
    for r, found in enumerate(per_case):
        matrix[r, [column[f] for f in found]] = 1.0
    return matrix, findings


def _per_column(name: str, rows: list[dict[str, str]], case_col: str,
                columns: list[str]) -> tuple[np.ndarray, int, int]:
    if not columns:
        raise FileFormatError(f"labels file {name} has no finding column: give case,label (one class per case), "
                              f"a {NIH_FINDINGS!r} column, or one 0/1 column per finding")
    matrix = np.zeros((len(rows), len(columns)), dtype=np.float32)
    uncertain = blank = 0
    for r, row in enumerate(rows):
        for k, column in enumerate(columns):
            text = row.get(column, "")
            if text not in VALUES:
                raise InputError(f"labels file {name}: finding {column!r} of case {row[case_col]!r} is {text!r}; a "
                                 "finding column holds 1 (present), 0 (absent), -1 (uncertain) or nothing")
            matrix[r, k] = VALUES[text]
            uncertain += text.startswith("-")
            blank += text == ""
    return matrix, uncertain, blank
