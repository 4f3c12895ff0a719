"""Run a text audit into a folder, resumably, and export what it found.

The notes' counterpart of :mod:`medlens.audit.run`, on the same pieces: :func:`run_note_audit`
plans the audit's fixed batches of the notes not yet in the store, runs them on an engine
(:data:`medlens.audit.notes.NOTE_AUDIT` on :func:`medlens.audit.engines.run_local` or
:func:`~medlens.audit.engines.run_ray`) and commits each batch to ``OUT/audit.sqlite`` as it
finishes; :func:`analyse_notes` reads the store, ranks and tests the tokens
(:mod:`medlens.audit.tokens`; the deletions are measured with the model when it is given and
stored, so a second analysis re-reads them) and writes ``cases.csv``, ``cases.parquet`` and
``tokens.csv``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from medlens.audit.cases import CaseFailure, CaseResult
from medlens.audit.engines import ENGINES
from medlens.audit.intervention import StoredRemoval
from medlens.audit.notes import NOTE_AUDIT, NoteAuditSettings, NoteSpec, open_notes
from medlens.audit.run import AuditRun, path_key, run_batches, stored_meta
from medlens.audit.store import (
    DB_FILE,
    AuditStore,
    locked,
    table,
    write_csv,
    write_parquet,
)
from medlens.audit.tokens import (
    TokenRemoval,
    TokenRule,
    TokenStrategies,
    find_token_strategies,
    token_key,
)
from medlens.core.progress import Progress
from medlens.errors import InputError
from medlens.models.fingerprint import model_fingerprint

__all__ = ["TOKEN_COLUMNS", "NoteAnalysis", "analyse_notes", "run_note_audit", "stored_note_settings"]

#: The columns of ``tokens.csv``, one row per token of each predicted class.
TOKEN_COLUMNS = ("class", "class_name", "rank", "token", "notes", "notes_elsewhere", "relevance_sum",
                 "relevance_mean", "tested", "n_tested", "change", "null_change", "difference", "same_sign_share",
                 "p_value", "verdict", "hits")


def run_note_audit(
    model: nn.Module,
    spec: NoteSpec,
    out: str | Path,
    settings: NoteAuditSettings,
    *,
    meta: dict[str, Any] | None = None,
    engine: str = "local",
    address: str | None = None,
    workers: int | None = None,
    restart: bool = False,
    progress: bool | Progress = False,
    limit: int | None = None,
) -> AuditRun:
    """Audit every note of ``spec`` with the text ``model`` into ``out`` (resuming what is there).

    The parameters are :func:`medlens.audit.run.run_audit`'s; ``meta`` is the model file's
    metadata (shipped with the model to Ray). The store's configuration names the settings, the
    model's weights, the notes file (a digest of its path, never the path: a file name may name
    a patient), its columns, how notes are named, and the vocabulary, so that another audit is
    never resumed into this one.
    """
    if engine not in ENGINES:
        raise InputError(f"unknown engine {engine!r}; use {' or '.join(ENGINES)}")
    out = Path(out)
    source = open_notes(spec)
    n = len(source) if limit is None else min(int(limit), len(source))
    if n < 1:
        raise InputError("the notes file holds no note")
    vocabulary = source.shown_vocabulary(n)  # names and numbers read from identifiers hidden unless asked
    config = {
        "settings": settings.to_json(),
        "model": model_fingerprint(model),
        "data": json.dumps({"data": path_key(spec.data), "columns": [spec.columns.text, spec.columns.label,
                                                                       spec.columns.case],
                            "named_by": "path" if spec.show_identifiers else "id"}),
        "input": json.dumps({"kind": "notes", "max_length": source.tokenizer.max_length,
                             "class_names": list((meta or {}).get("class_names") or source.class_names),
                             "vocabulary": vocabulary}),
    }
    notes = ([source.skipped] if source.skipped else []) + ([source.truncation_of(n)] if source.truncation_of(n) else [])
    added, seconds, stats, failures = run_batches(
        model, spec, out, config, settings, n, work=NOTE_AUDIT, meta=meta, engine=engine, address=address,
        workers=workers, restart=restart, progress=progress, unit="note")
    return AuditRun(out, n, added, seconds, engine, stats, failures, tuple(notes))


def stored_note_settings(out: str | Path) -> tuple[NoteAuditSettings, dict]:
    """The settings and input description of the text audit stored in ``out``."""
    settings, described = stored_meta(out)
    return NoteAuditSettings.from_json(settings), described


@dataclass(frozen=True)
class NoteAnalysis:
    """The stored notes, their token strategies and the files written."""

    results: list[CaseResult]
    settings: NoteAuditSettings
    strategies: TokenStrategies
    info: dict
    files: list[Path]
    failures: list[CaseFailure] = field(default_factory=list)

    @property
    def vocabulary(self) -> list[str]:
        return list(self.info["vocabulary"])


def analyse_notes(out: str | Path, *, model: nn.Module | None = None, rule: TokenRule | None = None,
                  tokens: Sequence[str] = (), extra: Mapping[str, Mapping[int, str]] | None = None,
                  parquet: bool = True) -> NoteAnalysis:
    """Read the text audit in ``out``; test its tokens; write ``cases.csv``, ``cases.parquet`` and ``tokens.csv``.

    Parameters
    ----------
    model : nn.Module, optional
        The audited model: token deletions not yet stored are measured and stored; without it
        such tokens are undecided.
    rule : TokenRule, optional
    tokens : sequence of str
        Vocabulary entries tested in every class besides the top ones.
    extra : mapping, optional
        ``{column: {case index: text}}`` further columns of ``cases.csv`` (the notes' own ids and
        snippets, which the use case adds only when asked).
    parquet : bool
        Also write ``cases.parquet`` (needs pyarrow).
    """
    out = Path(out)
    rule = TokenRule() if rule is None else rule
    settings, info = stored_note_settings(out)
    with locked(out), AuditStore(out / DB_FILE) as store:
        results = store.results()
        failures = store.failures()
        if not results:
            raise InputError(f"{out} holds no audited note yet")
        compute = None if model is None else TokenRemoval(model, results, info["max_length"], settings.batch_size,
                                                          settings.seed, rule.n_draws)
        removal = StoredRemoval(store, settings.rank_method, results, rule.n_draws, compute, key=token_key)
        strategies = find_token_strategies(results, settings, info["vocabulary"], rule=rule, removal=removal,
                                           tokens=tokens)
    columns, rows = table(results, settings, info.get("class_names") or ())
    hits = strategies.hits_by_case()
    extra = dict(extra or {})
    columns = [*columns, "n_tokens", "depends_on", *extra]
    rows = [[*row, len(r.tokens) if r.tokens is not None else 0, " ".join(hits.get(p, ())),
             *(values.get(r.index, "") for values in extra.values())] for p, (row, r) in enumerate(zip(rows, results))]
    files = [write_csv(out / "cases.csv", columns, rows)]
    if parquet:
        files.append(write_parquet(out / "cases.parquet", results, settings, info.get("class_names") or ()))
    files.append(write_csv(out / "tokens.csv", TOKEN_COLUMNS, token_rows(strategies, info.get("class_names") or [])))
    if failures:
        files.append(write_csv(out / "unreadable.csv", ["case", "error"], [[f.case, f.error] for f in failures]))
    return NoteAnalysis(results, settings, strategies, info, files, failures)


def token_rows(strategies: TokenStrategies, class_names: Sequence[str]) -> list[list[object]]:
    """The rows of ``tokens.csv``: every token of every predicted class, by rank."""
    rows = []
    for cs in strategies.classes:
        name = class_names[cs.predicted_class] if cs.predicted_class < len(class_names) else f"class {cs.predicted_class}"
        for t in cs.tokens:
            rows.append([cs.predicted_class, name, t.rank, t.token, t.notes, t.notes_elsewhere, t.relevance_sum,
                         t.relevance_mean, int(t.tested), t.n_tested if t.tested else "", t.change, t.null_change,
                         t.difference, t.effect, t.p_value, t.verdict, len(t.hits) if t.verdict == "depended on" else ""])
    return rows
