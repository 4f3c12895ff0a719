"""The per-note code path of a text audit: one batch of notes in, one result per note out.

A text model (``medlens train --data notes.csv``: token ids through the tokenizer stored in its
file) is audited like an image model, on the same store, engines and fixed batches
(:mod:`medlens.audit.store`, :mod:`medlens.audit.engines`, :func:`medlens.audit.run.plan_batches`);
what differs is the case and what is kept of it. For every note :func:`audit_note_indices` keeps:

* the prediction and class probabilities;
* the token scores of each method (:func:`medlens.attribution.tokens.explain_tokens`: the
  sequence methods on the embeddings, ``integrated_gradients`` and ``grad_x_input`` by default)
  and, for a model with additive attention, its attention weights, all for the predicted class,
  at the note's real positions (``CaseResult.summaries``, one row per score column) with the
  note's token ids (``CaseResult.tokens``);
* deletion and insertion AUC per score column, on tokens (:func:`token_curves`): Petsiuk et
  al.'s curves (RISE, BMVC 2018) where a position is a token and a token is removed by
  *deleting* it (:func:`delete_positions`).

Deletion, here and in the token test (:mod:`medlens.audit.tokens`), removes the token from the
note: later tokens move up and the note gets shorter, padding fills the end, as the attention
tests' leave-one-out does (:func:`medlens.evaluation.attention.leave_one_out`). It is neither of
the two substitutes a fixed-length input suggests: the padding id inside a note is a real step
with a zero embedding for a recurrent model (only trailing padding is skipped), a state it never
saw in training; the unknown id ``[unk]`` is a word the model did see (every rare word), whose
meaning it may have learnt. A note with every token deleted is one ``[unk]``, the tokenizer's
encoding of an empty note.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from medlens.attribution.sequence import METHODS as TOKEN_METHODS
from medlens.attribution.tokens import explain_tokens
from medlens.audit.cases import CaseFailure, CaseResult
from medlens.audit.engines import Work
from medlens.core import engine
from medlens.core.checks import evaluation_mode
from medlens.core.engine import Budget
from medlens.core.targets import probabilities
from medlens.data.notes_cases import NoteCases, NoteColumns
from medlens.errors import InputError, UnknownNameError

__all__ = [
    "DEFAULT_NOTE_METHODS",
    "NOTE_AUDIT",
    "NOTE_METRICS",
    "PAD_ID",
    "UNK_ID",
    "NoteAuditSettings",
    "NoteSpec",
    "audit_note_indices",
    "delete_positions",
    "open_notes",
    "token_curves",
]

#: Token methods of a text audit by default; the first ranks the tokens of the cohort.
DEFAULT_NOTE_METHODS = ("integrated_gradients", "grad_x_input")
NOTE_METRICS = ("deletion_auc", "insertion_auc")
PAD_ID, UNK_ID = 0, 1  # the ids of [pad] and [unk] in every medlens.data.tokenizer.NoteTokenizer
ATTENTION = "attention"


@dataclass(frozen=True)
class NoteAuditSettings:
    """What a text audit computes for every note; stored with the results and checked on resume.

    Attributes
    ----------
    methods : tuple of str
        Token methods (:data:`medlens.attribution.sequence.METHODS`); the first one's scores rank
        the cohort's tokens (:mod:`medlens.audit.tokens`).
    attention : bool
        Also keep the model's attention weights as a score column (a model with additive attention).
    n_steps : int
        Integrated-gradients path points.
    steps : int
        Steps of the deletion and insertion curves (``steps + 1`` points).
    cases_per_batch : int
        Notes per unit of work (of computing, committing and retrying).
    batch_size : int
        Fixed engine chunk size, so that numbers do not depend on free memory or the engine.
    seed : int
        The token test's null draws.
    """

    methods: tuple[str, ...] = DEFAULT_NOTE_METHODS
    attention: bool = True
    n_steps: int = 32
    steps: int = 10
    cases_per_batch: int = 16
    batch_size: int = 64
    seed: int = 0
    kind: str = field(default="notes", init=False)

    def __post_init__(self) -> None:
        if not self.methods:
            raise InputError("the audit needs at least one token method")
        for name in self.methods:
            if name not in TOKEN_METHODS:
                raise UnknownNameError(f"unknown token method {name!r}: notes are explained by {', '.join(TOKEN_METHODS)}")
        if len(set(self.methods)) != len(self.methods):
            raise InputError(f"a method is named twice in {', '.join(self.methods)}")
        for name in ("n_steps", "steps", "cases_per_batch", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"{name} must be a positive integer, got {value!r}")

    @property
    def all_methods(self) -> tuple[str, ...]:
        """The score columns kept per note: the methods, then ``attention`` when kept."""
        return (*self.methods, ATTENTION) if self.attention else tuple(self.methods)

    @property
    def rank_method(self) -> str:
        """The method whose scores rank the cohort's tokens."""
        return self.methods[0]

    @property
    def metrics(self) -> tuple[str, ...]:
        return NOTE_METRICS

    def columns(self) -> list[str]:
        """Metric columns of the results: ``column.metric`` for every score column and metric."""
        return [f"{m}.{k}" for m in self.all_methods for k in self.metrics]

    def to_json(self) -> str:
        payload = {k: v for k, v in asdict(self).items() if k != "kind"}
        payload["methods"] = list(self.methods)
        return json.dumps({"kind": self.kind, **payload}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> NoteAuditSettings:
        payload = json.loads(text)
        if payload.pop("kind", None) != "notes":
            raise InputError("the stored audit is not an audit of notes")
        payload["methods"] = tuple(payload["methods"])
        return cls(**payload)


@dataclass(frozen=True)
class NoteSpec:
    """A picklable description of a notes file for a text model; each engine worker opens it.

    Attributes
    ----------
    data : str
        The notes file (CSV / TSV / JSON Lines, or one ``.txt`` note).
    tokenizer : str
        The model's tokenizer (``meta["tokenizer"]``).
    class_names : tuple of str
    columns : NoteColumns
    show_identifiers : bool
        Name notes by the file's own case ids (its ``case`` column, else its row numbers)
        instead of pseudonymous ids (``case-0000``, by row).
    """

    data: str
    tokenizer: str
    class_names: tuple[str, ...] = ()
    columns: NoteColumns = field(default_factory=NoteColumns)
    show_identifiers: bool = False


def open_notes(spec: NoteSpec) -> NoteCases:
    """The notes of ``spec``, named by pseudonymous ids unless ``spec.show_identifiers``; the
    file's own ids stay in ``identifiers``."""
    return NoteCases(spec.data, spec.tokenizer, spec.class_names, spec.columns, show_identifiers=spec.show_identifiers)


def delete_positions(ids: torch.Tensor, remove: torch.Tensor) -> torch.Tensor:
    """Token rows with the positions of ``remove`` deleted (see the module docstring).

    Parameters
    ----------
    ids : torch.Tensor
        int64 ``(n, L)`` token ids, trailing padding :data:`PAD_ID`.
    remove : torch.Tensor
        bool ``(n, L)``: the positions to delete (padding is never kept either way).

    Returns
    -------
    torch.Tensor
        int64 ``(n, L)``: each row's remaining tokens in their order, then padding; a row left
        with no token is one :data:`UNK_ID`.
    """
    keep = (ids != PAD_ID) & ~remove.to(torch.bool)
    order = torch.argsort((~keep).to(torch.int8), dim=1, stable=True)  # kept positions first, in order
    out = ids.gather(1, order)
    count = keep.sum(1, keepdim=True)
    out = torch.where(torch.arange(ids.shape[1], device=ids.device)[None, :] < count, out, torch.zeros_like(out))
    out[count[:, 0] == 0, 0] = UNK_ID
    return out


def token_curves(model: nn.Module, ids: torch.Tensor, scores: torch.Tensor, target: torch.Tensor, steps: int,
                 budget: Budget) -> tuple[torch.Tensor, torch.Tensor]:
    """Deletion and insertion AUC of token scores (RISE's curves on tokens).

    At step ``k`` of ``steps`` the ``round(k n / steps)`` highest-scoring of a note's ``n``
    tokens (signed: evidence for the explained class first) are deleted (deletion), or are the
    only ones kept, in their order (insertion: from the empty note, one ``[unk]``); the curve is
    the probability of ``target``, its area the trapezoidal integral over ``k / steps``. All
    ``2 (steps + 1)`` rows of a note are built lazily inside the engine's chunks.

    Parameters
    ----------
    ids : torch.Tensor
        int64 ``(B, L)`` token ids.
    scores : torch.Tensor
        ``(B, L)`` scores (ignored on padding).
    target : torch.Tensor
        ``(B,)`` the explained class of each note.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        float64 ``(B,)`` deletion AUC (low: faithful) and insertion AUC (high: faithful).
    """
    b, length = ids.shape
    real = ids != PAD_ID
    n = real.sum(1)  # (B,)
    ranked = torch.where(real, scores.double(), torch.tensor(-math.inf, dtype=torch.float64))
    order = torch.argsort(ranked, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(length).expand(b, -1).contiguous())  # (B, L) rank of each position
    per_note = 2 * (steps + 1)
    fractions = torch.arange(steps + 1, dtype=torch.float64) / steps
    probs = torch.empty(b * per_note, dtype=torch.float64)

    def build(start: int, stop: int) -> torch.Tensor:
        rows = torch.arange(start, stop)
        note, rest = rows // per_note, rows % per_note
        insertion, step = rest // (steps + 1), rest % (steps + 1)
        count = torch.round(step.double() * n[note].double() / steps).long()[:, None]  # (r, 1)
        top = ranks[note] < count  # (r, L) the count highest-scoring real tokens
        remove = torch.where(insertion[:, None].bool(), real[note] & ~top, top)
        return delete_positions(ids[note], remove).to(engine.model_device(model))

    def consume(start: int, stop: int, outputs: torch.Tensor, _grads, _aux) -> None:
        rows = torch.arange(start, stop)
        p = probabilities(outputs).detach().to("cpu", torch.float64)
        probs[start:stop] = p[torch.arange(len(rows)), target[rows // per_note]]

    with evaluation_mode(model), torch.inference_mode():
        engine.run(model, b * per_note, build, consume=consume, budget=budget)
    curves = probs.view(b, 2, steps + 1)
    aucs = torch.trapezoid(curves, fractions, dim=2)  # (B, 2)
    return aucs[:, 0], aucs[:, 1]


def audit_note_indices(model: nn.Module, source: NoteCases, indices: Sequence[int],
                       settings: NoteAuditSettings) -> list[CaseResult | CaseFailure]:
    """Audit the notes at ``indices`` of ``source`` (the engines' work for a text audit)."""
    batch = source.load(indices)
    out: list[CaseResult | CaseFailure] = [CaseFailure(i, source.names[i], err) for i, err in batch.failed.items()]
    if batch.x is None:
        return out
    budget = Budget(batch_size=settings.batch_size)
    ex = explain_tokens(model, batch.x, None, settings.methods, n_steps=settings.n_steps,
                        batch_size=settings.batch_size)
    if settings.attention and ex.attention is None:
        raise InputError("this model has no additive attention to audit; audit it without attention")
    scores = {m: ex.scores[m] for m in settings.methods}
    if settings.attention:
        scores[ATTENTION] = ex.attention
    metrics: dict[str, torch.Tensor] = {}
    for column, values in scores.items():
        metrics[f"{column}.deletion_auc"], metrics[f"{column}.insertion_auc"] = token_curves(
            model, batch.x, values, ex.target, settings.steps, budget)
    probs = ex.probabilities.detach().to("cpu", torch.float64)
    for j, (i, name, label) in enumerate(zip(batch.indices, batch.cases, batch.labels)):
        n = int(ex.lengths[j])
        out.append(CaseResult(
            index=int(i), case=str(name), label=None if label is None else int(label),
            predicted=int(ex.target[j]), probabilities=tuple(float(p) for p in probs[j]),
            metrics={k: float(v[j]) for k, v in metrics.items()},
            summaries=torch.stack([scores[c][j, :n].to(torch.float32) for c in settings.all_methods]),
            evidence=torch.zeros(0), tokens=batch.x[j, :n].to(torch.int64).cpu().clone(),
        ))
    return out


#: The engines' work for a text audit: open the notes, audit a batch.
NOTE_AUDIT = Work(open_notes, audit_note_indices)
