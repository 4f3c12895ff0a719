"""The audit's results store: an SQLite database in the output folder, one row per case.

Each finished batch of cases is committed in one transaction (write-ahead log, ``synchronous =
FULL``): a run killed at any moment, SIGKILL included, leaves every committed case intact and
no half-written one, and a rerun skips what is committed. Case rows are keyed by the case's
index, so a batch that is computed twice (a Ray worker lost after it finished but before the
driver heard of it) is stored once. A note of a text audit (:mod:`medlens.audit.notes`) also
keeps its token ids, in the ``tokens`` table under the same index.

SQLite ships with Python, so the store needs nothing beyond the standard library; exports are
``cases.csv`` and ``cases.parquet`` (pyarrow).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import torch

from medlens.audit.cases import AuditSettings, CaseFailure, CaseResult
from medlens.core import files
from medlens.errors import InputError, MedlensError

__all__ = ["DB_FILE", "AuditStore", "locked"]

DB_FILE = "audit.sqlite"
LOCK_FILE = ".audit.lock"
FORMAT_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cases (
    idx INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    label INTEGER,
    predicted INTEGER NOT NULL,
    probabilities TEXT NOT NULL,
    metrics TEXT NOT NULL,
    summaries BLOB NOT NULL,
    n_methods INTEGER NOT NULL,
    evidence BLOB NOT NULL,
    worker TEXT
);
CREATE TABLE IF NOT EXISTS failures (idx INTEGER PRIMARY KEY, name TEXT NOT NULL, error TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (idx INTEGER PRIMARY KEY, ids BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS removals (region TEXT NOT NULL, idx INTEGER NOT NULL, change REAL,
                                     PRIMARY KEY (region, idx));
"""


@contextmanager
def locked(out: Path, what: str = "audit") -> Iterator[None]:
    """Hold an exclusive lock on the output folder: two runs never write one store (``what``
    names the command in the refusal: ``audit``, ``predict``)."""
    with files.folder_lock(out, name=LOCK_FILE, busy=f"another {what} is writing to {out}"):
        yield


class AuditStore:
    """The SQLite store of one audit folder.

    Parameters
    ----------
    path : str or Path
        The database file (``DIR/audit.sqlite``); created when missing.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=60)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as err:
            raise MedlensError(f"{self.path} is not a readable audit store: {err}") from err

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> "AuditStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------------------------------
    # configuration
    # ---------------------------------------------------------------------------------------

    def meta(self) -> dict[str, str]:
        return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def start(self, config: dict[str, str], *, restart: bool = False) -> None:
        """Record the run's configuration, or check it against the stored one.

        ``config`` maps names (settings, model fingerprint, data) to JSON text. A stored run
        with another configuration is an error unless ``restart`` discards it.
        """
        config = {"format_version": str(FORMAT_VERSION), **config}
        stored = self.meta()
        if stored and restart:
            with self._transaction():
                self._db.execute("DELETE FROM cases")
                self._db.execute("DELETE FROM failures")
                self._db.execute("DELETE FROM removals")
                self._db.execute("DELETE FROM tokens")
                self._db.execute("DELETE FROM meta")
            stored = {}
        if stored:
            for key, value in config.items():
                if key == "engine":
                    continue
                if stored.get(key) != value:
                    raise InputError(
                        f"{self.path.parent} holds an audit with another {key.replace('_', ' ')}; "
                        "use another --out folder or --restart"
                    )
            return
        with self._transaction():
            self._db.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", sorted(config.items()))

    # ---------------------------------------------------------------------------------------
    # cases
    # ---------------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def done(self) -> set[int]:
        """Indices of the committed cases, audited or found unreadable."""
        return {row[0] for row in self._db.execute("SELECT idx FROM cases UNION SELECT idx FROM failures")}

    def add(self, results: Iterable[CaseResult | CaseFailure], *, worker: str = "") -> int:
        """Commit a batch of cases atomically; returns how many audited cases were new (others are kept).

        A :class:`CaseFailure` is stored with its error and counts as done (``--restart`` retries it).
        """
        results = list(results)
        failures = [(f.index, f.case, f.error) for f in results if isinstance(f, CaseFailure)]
        results = [r for r in results if not isinstance(r, CaseFailure)]
        rows = [
            (r.index, r.case, r.label, r.predicted, json.dumps(list(r.probabilities)),
             json.dumps(r.metrics, sort_keys=True), r.summaries.contiguous().numpy().tobytes(),
             int(r.summaries.shape[0]), r.evidence.contiguous().numpy().tobytes(), worker)
            for r in results
        ]
        with self._transaction():
            before = self._db.total_changes
            self._db.executemany(
                "INSERT OR IGNORE INTO cases (idx, name, label, predicted, probabilities, metrics, summaries, "
                "n_methods, evidence, worker) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
            added = self._db.total_changes - before
            self._db.executemany("INSERT OR IGNORE INTO tokens (idx, ids) VALUES (?, ?)",
                                 [(r.index, r.tokens.to(torch.int64).contiguous().numpy().tobytes())
                                  for r in results if r.tokens is not None])
            self._db.executemany("INSERT OR IGNORE INTO failures (idx, name, error) VALUES (?, ?, ?)", failures)
            return added

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM cases").fetchone()[0])

    def results(self) -> list[CaseResult]:
        """Every committed case, in index order."""
        out = []
        for idx, name, label, predicted, probs, metrics, blob, n_methods, ev, ids in self._db.execute(
            "SELECT c.idx, c.name, c.label, c.predicted, c.probabilities, c.metrics, c.summaries, c.n_methods, "
            "c.evidence, t.ids FROM cases c LEFT JOIN tokens t ON t.idx = c.idx ORDER BY c.idx"
        ):
            summaries = _floats(blob).reshape(n_methods, -1) if n_methods else torch.zeros(0, 0)
            evidence = _floats(ev)
            out.append(CaseResult(idx, name, label, predicted, tuple(json.loads(probs)), json.loads(metrics),
                                  summaries, evidence, _ids(ids)))
        return out

    def failures(self) -> list[CaseFailure]:
        """Every case stored as unreadable, in index order."""
        return [CaseFailure(i, n, e) for i, n, e in self._db.execute("SELECT idx, name, error FROM failures ORDER BY idx")]

    def removals(self, region: str) -> dict[int, float]:
        """``{case index: change}`` stored for a removal (:mod:`medlens.audit.intervention`); NaN: not measurable."""
        rows = self._db.execute("SELECT idx, change FROM removals WHERE region = ?", (region,)).fetchall()
        return {int(i): math.nan if v is None else float(v) for i, v in rows}

    def add_removals(self, region: str, changes: dict[int, float]) -> None:
        """Store the predicted-class probability changes of a removal (NaN stored as NULL)."""
        with self._transaction():
            self._db.executemany("INSERT OR REPLACE INTO removals (region, idx, change) VALUES (?, ?, ?)",
                                 [(region, int(i), None if math.isnan(d) else float(d)) for i, d in changes.items()])

    def workers(self) -> dict[str, int]:
        """Cases committed per worker name."""
        return dict(self._db.execute("SELECT COALESCE(worker, ''), COUNT(*) FROM cases GROUP BY worker").fetchall())


def _floats(blob: bytes) -> torch.Tensor:
    """float32 values stored as bytes; empty for a case stored without maps (``medlens predict``)."""
    return torch.frombuffer(bytearray(blob), dtype=torch.float32) if blob else torch.zeros(0)


def _ids(blob: bytes | None) -> torch.Tensor | None:
    """A note's int64 token ids stored as bytes; ``None`` for a case that is no note."""
    if blob is None:
        return None
    return torch.frombuffer(bytearray(blob), dtype=torch.int64) if blob else torch.zeros(0, dtype=torch.int64)


# -------------------------------------------------------------------------------------------
# exports
# -------------------------------------------------------------------------------------------


def class_name(k: int | None, class_names: Sequence[str]) -> str:
    """Class (finding) ``k``'s name, its index as text where ``class_names`` has none, ``""`` for ``None``."""
    if k is None:
        return ""
    return str(class_names[k]) if 0 <= k < len(class_names) else str(k)


def table(results: Sequence[CaseResult], settings: AuditSettings,
          class_names: Sequence[str] = ()) -> tuple[list[str], list[list]]:
    """``cases.csv``'s columns and rows: case, label and predicted (class indices, as other code reads
    them), probability, their names (``label_name``, ``predicted_name``), then metrics."""
    columns = ["case", "label", "predicted", "probability", "label_name", "predicted_name", *settings.columns()]
    rows = []
    for r in results:
        rows.append([r.case, r.label, r.predicted, r.probability, class_name(r.label, class_names),
                     class_name(r.predicted, class_names), *(r.metrics.get(c, math.nan) for c in settings.columns())])
    return columns, rows


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    return str(value)


def write_csv(path: Path, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """Write a CSV atomically (:func:`medlens.core.files.write_csv`); NaN and None as empty."""
    columns = list(columns)
    return files.write_csv(path, ({c: _text(v) for c, v in zip(columns, row)} for row in rows), columns)


def write_parquet(path: Path, results: Sequence[CaseResult], settings: AuditSettings,
                  class_names: Sequence[str] = ()) -> Path:
    """``cases.parquet``: the columns of ``cases.csv`` plus the probabilities and map summaries."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns, rows = table(results, settings, class_names)
    data: dict[str, list] = {c: [row[i] for row in rows] for i, c in enumerate(columns)}
    data["index"] = [r.index for r in results]
    data["probabilities"] = [list(r.probabilities) for r in results]
    for m, method in enumerate(settings.all_methods):
        data[f"{method}.summary"] = [r.summaries[m].tolist() for r in results]
    types = {"case": pa.string(), "label": pa.int64(), "predicted": pa.int64(), "index": pa.int64()}
    arrays = {k: pa.array(v, type=types.get(k)) for k, v in data.items()}
    with files.atomic_path(path) as tmp:
        pq.write_table(pa.table(arrays), tmp)
    return path
