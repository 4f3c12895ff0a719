"""The tokens a text model's predictions rest on, per predicted class, and whether they depend on them.

The text analogue of the image audit's strategies (:mod:`medlens.audit.strategies`), on the
notes of a text audit (:mod:`medlens.audit.notes`).

**Relevance.** Each note's scores of the ranking method (the audit's first method, integrated
gradients by default; signed, for the predicted class) are divided by the sum of their absolute
values, so every note has the same weight and a token's relevance in a note is its share of the
note's relevance (summed over its occurrences). Per predicted class and vocabulary entry:
``relevance_sum`` (over the class's notes; "how many notes' worth of relevance" the token
carries), ``relevance_mean`` (over the notes that contain it), and how many notes of the class
contain it and how many of the other classes.

**The token test** (the intervention of :mod:`medlens.audit.intervention`, on tokens). Tested
per predicted class: the ``top`` tokens of highest positive ``relevance_sum``, and every token
the user names. For a token ``t`` of class ``c``, the notes predicted ``c`` that contain ``t``:

* each note's *change*: its predicted-class probability minus the same after every occurrence
  of ``t`` is deleted (:func:`medlens.audit.notes.delete_positions`: the token is taken out of
  the note, not replaced);
* its *null*: the mean change over ``n_draws`` deletions of as many other tokens of the same
  note, drawn at random among its positions that do not hold ``t`` (each draw from its own
  seeded generator: the audit's seed, the token, the note and the draw). Under the null
  hypothesis "this token matters to these notes no more than as many other words of theirs",
  change and null are exchangeable;
* a two-sided Wilcoxon signed-rank test of change against null over the notes
  (:func:`medlens.audit.strategies.paired_test`), Holm-corrected over every tested token of
  every class (:func:`medlens.audit.strategies.holm`, family-wise level ``alpha``).

The null's deletions can hit other words the model depends on (in the notes of a class that
rests on a planted token, a random deletion sometimes takes the planted token out), so a token
that matters *less* than those can differ from its null too. A difference counts only when it
is the token's own: its mean change has the sign of the mean difference and is larger than the
null's mean change.

Verdicts: ``"depended on"`` when the corrected ``p < alpha``, the difference has one sign in
at least ``min_effect`` of the notes, it is the token's own, and both the mean difference and
the token's mean change reach ``min_change`` (a probability); ``"small effect"`` when all of
that holds but the size; ``"undecided"`` when fewer than ``min_size`` notes could be tested,
when even all differences of one sign could not have reached the corrected level (too few
notes for the number of tests), or when no model was at hand to measure; else
``"not depended on"``. A token the model depends on may push towards the class (deleting it
lowers the probability: a positive mean change) or against it. For a depended-on token, the
notes whose own change goes further, in that direction, than each of their null deletions are
its *hits* (a per-note randomisation test at level ``1 / (n_draws + 1)``); ``cases.csv`` names
them.

The rule's numbers are the image audit's (:class:`medlens.audit.strategies.FlagRule`); they were
chosen for images and not calibrated again on text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from medlens.audit.cases import CaseResult
from medlens.audit.notes import PAD_ID, delete_positions
from medlens.audit.strategies import FlagRule, holm, paired_test
from medlens.core.checks import evaluation_mode, model_outputs
from medlens.core.engine import Budget, model_device
from medlens.core.random import generator
from medlens.core.targets import probabilities
from medlens.errors import InputError

__all__ = ["VERDICTS", "ClassTokens", "TokenRemoval", "TokenRule", "TokenStrategies", "TokenStrategy", "find_token_strategies",
           "token_key"]

DEPENDED, SMALL, NOT_DEPENDED, UNDECIDED = "depended on", "small effect", "not depended on", "undecided"
VERDICTS = (DEPENDED, SMALL, NOT_DEPENDED, UNDECIDED)

#: ``removal((token id,), positions) -> (n, 1 + n_draws) changes`` or ``None``
TokenRemovalFn = Callable[[tuple[int, ...], Sequence[int]], "torch.Tensor | None"]


@dataclass(frozen=True)
class TokenRule:
    """Which tokens are tested and when the model depends on one (module docstring).

    Attributes
    ----------
    top : int
        Tokens tested per predicted class: the highest positive ``relevance_sum``.
    alpha : float
        Family-wise level of the Holm-corrected two-sided Wilcoxon signed-rank tests.
    min_effect : float
        Least share of notes whose difference has the sign of the mean difference.
    min_change : float
        Least mean difference between the notes' changes and their nulls (a probability).
    n_draws : int
        Null deletions per note.
    min_size : int
        Fewest notes a test needs.
    """

    top: int = 10
    # the image audit's numbers, taken from its rule so that the two cannot drift apart
    alpha: float = FlagRule.alpha
    min_effect: float = FlagRule.min_effect
    min_change: float = FlagRule.min_change
    n_draws: int = FlagRule.n_draws
    min_size: int = FlagRule.min_size

    def __post_init__(self) -> None:
        for name in ("top", "n_draws", "min_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if name == "top" else 1):
                raise InputError(f"{name} must be a {'non-negative' if name == 'top' else 'positive'} integer, got {value!r}")
        if not 0 < self.alpha < 1:
            raise InputError(f"alpha must lie in (0, 1), got {self.alpha}")


@dataclass(frozen=True)
class TokenStrategy:
    """One vocabulary entry in the notes of one predicted class.

    Attributes
    ----------
    predicted_class, token_id, token :
        The class, the token's id and its vocabulary entry.
    rank : int
        1 for the token of highest ``relevance_sum`` in the class.
    notes : int
        Notes predicted as the class that contain the token.
    notes_elsewhere : int
        Notes predicted as another class that contain it.
    relevance_sum, relevance_mean : float
        Its share of each note's relevance, summed over the class's notes and averaged over
        the notes that contain it.
    tested : bool
        Among the tokens tested (the top ones, or named by the user).
    n_tested : int
        Notes in the test.
    change, null_change : float
        Mean change of the predicted-class probability when the token is deleted, and when as
        many other tokens are (NaN: not measured).
    effect : float
        Share of tested notes whose difference has the sign of the mean difference.
    p_value : float
        Holm-corrected two-sided Wilcoxon p-value (NaN: not measured).
    verdict : str
        ``"depended on"``, ``"small effect"``, ``"not depended on"``, ``"undecided"``, or ``""``
        (not tested).
    why : str
        Why undecided: ``"few"`` (fewer than ``min_size`` notes), ``"power"`` (too few to reach
        the corrected level), ``"unmeasured"`` (no model at hand); else ``""``.
    members : list of int
        Positions (in the results) of the notes of the class that contain the token.
    hits : list of int
        Positions of the notes whose own change goes further than each of their null deletions
        (a depended-on token only).
    """

    predicted_class: int
    token_id: int
    token: str
    rank: int
    notes: int
    notes_elsewhere: int
    relevance_sum: float
    relevance_mean: float
    tested: bool = False
    n_tested: int = 0
    change: float = math.nan
    null_change: float = math.nan
    effect: float = math.nan
    p_value: float = math.nan
    verdict: str = ""
    why: str = ""
    members: list[int] = field(default_factory=list)
    hits: list[int] = field(default_factory=list)

    @property
    def difference(self) -> float:
        """Mean change when the token is deleted minus when as many others are."""
        return self.change - self.null_change


@dataclass(frozen=True)
class ClassTokens:
    """The tokens of the notes predicted as one class, by decreasing ``relevance_sum``."""

    predicted_class: int
    n_notes: int
    tokens: list[TokenStrategy]

    def tested(self) -> list[TokenStrategy]:
        return [t for t in self.tokens if t.tested]


@dataclass(frozen=True)
class TokenStrategies:
    """The token analysis of a whole text audit."""

    method: str
    classes: list[ClassTokens]
    rule: TokenRule = field(default_factory=TokenRule)

    def tested(self) -> list[TokenStrategy]:
        return [t for cs in self.classes for t in cs.tested()]

    def depended(self) -> list[TokenStrategy]:
        return [t for t in self.tested() if t.verdict == DEPENDED]

    def hits_by_case(self) -> dict[int, list[str]]:
        """``{position: [tokens]}``: the depended-on tokens each note is a hit of."""
        out: dict[int, list[str]] = {}
        for t in self.depended():
            for p in t.hits:
                out.setdefault(p, []).append(t.token)
        return out


def token_key(_method: str, cells: Sequence[int], draw: int = 0) -> str:
    """The store's key of a token deletion (:class:`medlens.audit.intervention.StoredRemoval`):
    the same whatever method ranked the token (draw 0: the token itself; ``j``: the ``j``-th null)."""
    return "tokens|delete|" + ",".join(str(int(c)) for c in cells) + (f"|null{draw}" if draw else "")


def _relevance(result: CaseResult, method_row: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The note's token ids and each position's share of its relevance."""
    ids = result.tokens if result.tokens is not None else torch.zeros(0, dtype=torch.int64)
    scores = result.summaries[method_row].to(torch.float64) if result.summaries.numel() else torch.zeros(0)
    if len(scores) != len(ids):
        raise InputError(f"case {result.case}: {len(scores)} token scores for {len(ids)} tokens (not a note audit)")
    total = float(scores.abs().sum())
    return ids, scores / total if total > 0 else torch.zeros_like(scores)


def find_token_strategies(
    results: Sequence[CaseResult],
    settings,
    vocabulary: Sequence[str],
    *,
    rule: TokenRule = TokenRule(),
    removal: TokenRemovalFn | None = None,
    tokens: Sequence[str] = (),
) -> TokenStrategies:
    """Rank each predicted class's tokens and test the top ones (module docstring).

    Parameters
    ----------
    results : sequence of CaseResult
        The notes of a text audit (with ``tokens``).
    settings : NoteAuditSettings
    vocabulary : sequence of str
        The token of every id.
    rule : TokenRule
    removal : callable, optional
        ``removal((token id,), positions) -> (n, 1 + n_draws)`` changes (:class:`TokenRemoval`,
        through the store); without it every tested token is undecided.
    tokens : sequence of str
        Vocabulary entries tested in every class whose notes contain them, besides the top ones.
    """
    index = {t: i for i, t in enumerate(vocabulary)}
    unknown = [t for t in tokens if t not in index]
    if unknown:
        raise InputError(f"token {unknown[0]!r} is not in the model's vocabulary (tokens are lower-cased words; "
                         "a de-identification placeholder is 'xxxx')")
    named = {index[t] for t in tokens}
    row = settings.all_methods.index(settings.rank_method)
    size = len(vocabulary)
    per_note = [_relevance(r, row) for r in results]
    contains = torch.zeros(size, dtype=torch.long)
    for ids, _ in per_note:
        contains += torch.bincount(torch.unique(ids), minlength=size)[:size]
    pending: list[dict] = []
    sizes: list[tuple[int, int]] = []
    for cls in sorted({r.predicted for r in results}):
        members = [i for i, r in enumerate(results) if r.predicted == cls]
        ids = torch.cat([per_note[i][0] for i in members])
        shares = torch.cat([per_note[i][1] for i in members])
        total = torch.bincount(ids, weights=shares, minlength=size)[:size].to(torch.float64)
        here = torch.zeros(size, dtype=torch.long)
        for i in members:
            here += torch.bincount(torch.unique(per_note[i][0]), minlength=size)[:size]
        present = [int(t) for t in torch.nonzero(here).reshape(-1) if int(t) != PAD_ID]
        present.sort(key=lambda t: (-float(total[t]), t))
        top = set([t for t in present if float(total[t]) > 0][:rule.top])
        for rank, t in enumerate(present, start=1):
            pending.append({
                "predicted_class": cls, "token_id": t, "token": vocabulary[t], "rank": rank, "notes": int(here[t]),
                "notes_elsewhere": int(contains[t] - here[t]), "relevance_sum": float(total[t]),
                "relevance_mean": float(total[t]) / int(here[t]), "tested": t in top or t in named,
                "members": [i for i in members if bool((per_note[i][0] == t).any())],
            })
        sizes.append((cls, len(members)))
    for entry in pending:
        if entry["tested"]:
            entry.update(_measure(entry, rule, removal))
    measured = [e for e in pending if "test" in e]
    adjusted = holm([e["test"][0] for e in measured])
    best = holm([e["test"][2] for e in measured])
    for e, p, b in zip(measured, adjusted, best):
        e.update(_decide(e, p, b, rule))
    decided = [TokenStrategy(**{k: v for k, v in e.items() if k not in ("test", "own", "draws")}) for e in pending]
    classes = [ClassTokens(cls, n, [t for t in decided if t.predicted_class == cls]) for cls, n in sizes]
    return TokenStrategies(settings.rank_method, classes, rule)


def _measure(entry: dict, rule: TokenRule, removal: TokenRemovalFn | None) -> dict:
    """The changes of deleting the token from its notes and of their null deletions."""
    members = entry["members"]
    if len(members) < rule.min_size:
        return {"verdict": UNDECIDED, "why": "few", "n_tested": len(members)}
    changes = None if removal is None else removal((entry["token_id"],), members)
    if changes is None:
        return {"verdict": UNDECIDED, "why": "unmeasured", "n_tested": len(members)}
    own, null = changes[:, 0], changes[:, 1:].nanmean(1)
    keep = ~(own.isnan() | null.isnan())
    if int(keep.sum()) < rule.min_size:
        return {"verdict": UNDECIDED, "why": "few", "n_tested": int(keep.sum())}
    tested = [p for p, k in zip(members, keep.tolist()) if k]
    return {"n_tested": len(tested), "change": float(own[keep].mean()), "null_change": float(null[keep].mean()),
            "test": paired_test(own[keep], null[keep]), "own": (tested, own[keep], changes[keep][:, 1:])}


def _decide(entry: dict, p_value: float, best_p: float, rule: TokenRule) -> dict:
    """The verdict of a measured token from its corrected test."""
    _p, effect, _best = entry["test"]
    out = {"p_value": p_value, "effect": effect}
    difference = entry["change"] - entry["null_change"]
    if best_p >= rule.alpha:
        return {**out, "verdict": UNDECIDED, "why": "power"}
    change, null = entry["change"], entry["null_change"]
    own_effect = change * difference > 0 and abs(change) > abs(null)  # the token's own, not its null's
    if not (p_value < rule.alpha and effect >= rule.min_effect and own_effect):
        return {**out, "verdict": NOT_DEPENDED}
    if abs(difference) < rule.min_change or abs(change) < rule.min_change:
        return {**out, "verdict": SMALL}
    tested, own, draws = entry["own"]
    sign = 1.0 if difference >= 0 else -1.0
    beyond = ((sign * own[:, None] > sign * draws) | draws.isnan()).all(1)
    return {**out, "verdict": DEPENDED, "hits": [p for p, b in zip(tested, beyond.tolist()) if b]}


class TokenRemoval:
    """Changes measured with the model: ``removal((token id,), positions) -> (n, 1 + n_draws)``.

    Column 0 is each note's predicted-class probability before minus after deleting every
    occurrence of the token; column ``j`` the same for its ``j``-th null deletion of as many
    other tokens (NaN when the note has too few). The notes are rebuilt from their stored token
    ids (``CaseResult.tokens``), so the audit's data need not be read again; the probability
    before is computed in the same engine pass as the ones after.

    Parameters
    ----------
    model : nn.Module
    results : sequence of CaseResult
    length : int
        Tokens per row (the tokenizer's ``max_length``).
    batch_size : int
        The engine's fixed chunk size.
    seed : int
    n_draws : int
    """

    CHUNK = 256  # notes whose rows are built at once

    def __init__(self, model: nn.Module, results: Sequence[CaseResult], length: int, batch_size: int, seed: int,
                 n_draws: int) -> None:
        self.model, self.results = model, list(results)
        self.length, self.budget = int(length), Budget(batch_size=int(batch_size))
        self.seed, self.n_draws = int(seed), int(n_draws)

    def _rows(self, token: int, position: int) -> tuple[torch.Tensor, list[bool]]:
        """The note's rows: itself, without the token, and its null deletions; which nulls exist."""
        r = self.results[position]
        ids = torch.zeros(self.length, dtype=torch.int64)
        ids[: len(r.tokens)] = r.tokens[: self.length]
        real = ids != PAD_ID
        hit = real & (ids == token)
        k = int(hit.sum())
        free = torch.nonzero(real & ~hit).reshape(-1)
        removes, exists = [hit], []
        for draw in range(1, self.n_draws + 1):
            remove = torch.zeros(self.length, dtype=torch.bool)
            if len(free) >= k:
                pick = torch.randperm(len(free), generator=generator(self.seed, "token-null", token, r.index, draw))[:k]
                remove[free[pick]] = True
            exists.append(len(free) >= k)
            removes.append(remove)
        rows = delete_positions(ids.expand(len(removes), -1), torch.stack(removes))
        return torch.cat([ids[None], rows]), exists

    def __call__(self, cells: tuple[int, ...], positions: Sequence[int]) -> torch.Tensor | None:
        (token,) = cells
        if not positions:
            return torch.zeros(0, 1 + self.n_draws, dtype=torch.float64)
        out = []
        for start in range(0, len(positions), self.CHUNK):
            chunk = list(positions[start:start + self.CHUNK])
            built = [self._rows(int(token), p) for p in chunk]
            x = torch.cat([rows for rows, _ in built]).to(model_device(self.model))  # (n (2 + draws), L)
            with evaluation_mode(self.model), torch.inference_mode():
                probs = probabilities(model_outputs(self.model, x, self.budget)).detach().to("cpu", torch.float64)
            probs = probs.view(len(chunk), 2 + self.n_draws, -1)
            predicted = torch.tensor([self.results[p].predicted for p in chunk])
            chosen = probs[torch.arange(len(chunk)), :, predicted]  # (n, 2 + draws)
            valid = torch.tensor([[True, *exists] for _, exists in built])
            out.append(torch.where(valid, chosen[:, :1] - chosen[:, 1:], torch.tensor(math.nan, dtype=torch.float64)))
        return torch.cat(out)
