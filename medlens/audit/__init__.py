"""Cohort audit: explain a whole data set, score every case, find the model's strategies (SpRAy).

* :mod:`medlens.audit.cases`: the per-case code path (prediction, maps, faithfulness and
  localisation numbers, map summaries);
* :mod:`medlens.audit.engines`: the in-process engine and the Ray engine;
* :mod:`medlens.audit.store`: the resumable SQLite store and its CSV / Parquet exports;
* :mod:`medlens.audit.spray` and :mod:`medlens.audit.strategies`: spectral relevance analysis
  and the flagging of candidate shortcuts;
* :mod:`medlens.audit.run`: :func:`run_audit` and :func:`analyse`, which tie them together;
* a text model on notes, on the same store, engines and batches: :mod:`medlens.audit.notes` (the
  per-note path: token scores, deletion and insertion AUC on tokens), :mod:`medlens.audit.tokens`
  (each class's tokens and the token deletion test), :mod:`medlens.audit.run_notes`
  (:func:`~medlens.audit.run_notes.run_note_audit`, :func:`~medlens.audit.run_notes.analyse_notes`).
"""

from medlens.audit.cases import AuditSettings, CaseResult, audit_batch
from medlens.audit.run import AuditRun, analyse, run_audit
from medlens.audit.sources import SourceSpec
from medlens.audit.spray import adjusted_rand_index, spectral_clusters
from medlens.audit.strategies import FlagRule, Strategies, find_strategies

__all__ = [
    "AuditRun",
    "AuditSettings",
    "CaseResult",
    "FlagRule",
    "SourceSpec",
    "Strategies",
    "adjusted_rand_index",
    "analyse",
    "audit_batch",
    "find_strategies",
    "run_audit",
    "spectral_clusters",
]
