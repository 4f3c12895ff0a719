"""The model's prediction strategies: SpRAy per predicted class, each cluster scored and flagged.

For every predicted class, the map summaries of one method are clustered
(:func:`medlens.audit.spray.spectral_clusters`). Each cluster gets its size, mean map, accuracy
against the labels, exemplars (the cases nearest its centroid) and a score of how far its
relevance sits from where the class evidence should be.

The score looks at where the cluster *concentrates* its relevance. With ``P_C`` the cluster's
mean relevance distribution over the summary grid (averaging over the members removes the noise
of single maps), its concentrated relevance is ``max(P_C - 1/G, 0)``, what it puts on each of the
``G`` cells beyond a uniform map (its total is the total-variation distance ``d`` from uniform).
A cell is evidence for the cluster when at least ``evidence_share`` of the members may hold
evidence there: their own (dilated) lesion or anatomy mask, for cases predicted as their label,
else the interior of the input, off the border band where tags and markers live
(:func:`medlens.audit.summary.evidence_grid`). The *misplaced share* is the part of the
concentrated relevance that lies on cells that are not evidence. A strategy that looks at
lesions scores near 0 wherever the lesions are; one that looks at a corner tag scores high.

A cluster that puts some of its concentrated relevance off the evidence (``misplaced >= share``,
``distinct >= min_difference``, at least ``min_size`` members) is a *candidate*. Where the maps
lie is not enough to flag it: the maps of a model that ignores a marker can still sit on the
marker's sharp edges. A candidate is flagged as a shortcut (a "Clever Hans" strategy,
Lapuschkin et al., Nature Communications 2019) only when the model's decisions *depend* on what
its maps point at, tested by intervention inside the audited data
(:mod:`medlens.audit.intervention`):

* the cluster's *region*: the off-evidence summary cells holding ``cover`` of its off-evidence
  concentrated relevance (and their off-evidence neighbours it also concentrates on);
* each member's *change*: its predicted-class probability minus the same after the region is
  replaced by a blurred copy of the case;
* each member's *null*: the mean change over ``n_draws`` removals of as many cells drawn at
  random among the member's own evidence-free cells away from the region. Under the null
  hypothesis "this place matters to these cases no more than any other evidence-free input",
  a member's change and its null are exchangeable. Members for which the region may hold their
  own evidence (a lesion) are not tested;
* a two-sided Wilcoxon signed-rank test of change against null over the tested members (a
  shortcut may push towards the prediction or against it: a marker the model reads as "lesion"
  lowers the "no lesion" cases it could not overturn), Holm-corrected over the audit's *family*:
  every tested cluster and hotspot group (below) whose test could reach ``alpha`` at all, that
  is whose smallest attainable p-value (all differences of one sign) is below ``alpha``. Which
  tests these are depends on the numbers of tested members only, never on their changes, so the
  family-wise level ``alpha`` holds; a test that could not reach it is undecided.

A cluster is tested where its *mean* map points, so a member whose own map points at another
place off its evidence is not tested for that place. The *hotspot groups*
(:mod:`medlens.audit.hotspots`) catch such members: the members of candidate clusters whose own
hotspot (their largest excess relevance off their own evidence) lies outside their cluster's
region, grouped by hotspot cell across the class's clusters. A group of at least ``min_size``
members that passes the same candidate filter is tested like a cluster, at its hotspot and the
neighbouring cells off its evidence (:func:`medlens.audit.hotspots.hotspot_region`), in the
same family. It is a :class:`Cluster` with ``hotspot >= 0``, in :attr:`ClassStrategies.hotspots`.

Flagged: corrected ``p < alpha``, the difference of one sign in at least ``min_effect`` of the
tested members, a mean difference of at least ``min_change`` (a change of the predicted-class
probability a reader would care about), and a region that matters *more* than elsewhere (the
members' mean change is larger in size than their nulls': a place whose removal moves the
predictions less than removing evidence-free input anywhere else is not one they depend on).
The *flagged cases* are the tested members of a flagged cluster or group whose own change goes
further, in its direction, than every one of their own null removals (a per-case randomisation
test at level ``1 / (n_draws + 1)``); ``clusters.csv`` marks them.

Undecided (never flagged): the test could not be run (no model at hand, fewer than
``min_size`` testable members), even a perfect separation could not reach the corrected level,
or the test found no effect on a model that is no better than chance on the audited labels
(binomial test at ``chance_alpha`` against always answering the most frequent label): such a
model uses no evidence either, so a negative result does not clear the strategy. Otherwise: not
flagged. ``verdict`` says which: ``"flagged"``, ``"not flagged"`` or ``"undecided"``.

The rule's versions, each designed on grids of ``benchmarks/audit_calibration.py`` and scored
once on a grid of fresh runs: v1 (a flat local-mean fill; a flagged case one whose change
exceeded its null by ``min_change``), designed on DESIGN, failed HELDOUT
(``audit_calibration_heldout.json``); v2 (blurred fill, per-case randomisation), designed on
DESIGN, failed HELDOUT2 on one run whose marked cases sat in a cluster pointing elsewhere
(``audit_calibration_heldout2.json``); this version, v3 (hotspot groups, the family of tests that
can reach the level, "matters more than elsewhere"; the ``FlagRule`` settings unchanged), was
designed on DESIGN, HELDOUT and HELDOUT2, all of them seen and so all design data now
(``audit_calibration_*_v3rule.json``), frozen, and scored once on HELDOUT3, fresh runs
(``audit_calibration_heldout3.json``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from medlens.audit.cases import AuditSettings, CaseResult
from medlens.audit.hotspots import hotspot_region, hotspots, missed_groups
from medlens.audit.intervention import Removal, cluster_region
from medlens.audit.spray import Clustering, spectral_clusters
from medlens.errors import InputError

__all__ = ["ClassStrategies", "Cluster", "FlagRule", "Strategies", "better_than_chance", "find_strategies", "holm",
           "paired_test"]


@dataclass(frozen=True)
class FlagRule:
    """When a cluster counts as a candidate shortcut, and when it is flagged (module docstring).

    Attributes
    ----------
    share : float
        Least misplaced share of the cluster's concentrated relevance (the candidate filter).
    min_difference : float
        Least total-variation distance between the cluster's mean map and a uniform map.
    evidence_share : float
        Share of members for which a cell must be possible evidence to count as evidence.
    cover : float
        Share of the off-evidence concentrated relevance the removed region's core cells hold.
    alpha : float
        Family-wise level of the Holm-corrected two-sided Wilcoxon signed-rank tests.
    min_effect : float
        Least share of members whose change exceeds their null's.
    min_change : float
        Least mean difference between the members' changes and their nulls (a probability).
    n_draws : int
        Null draws per member (random evidence-free regions of the same size).
    chance_alpha : float
        Level of the binomial test that the model is better than chance on the audited labels.
    min_size : int
        Smallest cluster that can be flagged, and smallest group on either side of the test.
    """

    share: float = 0.05
    min_difference: float = 0.02
    evidence_share: float = 0.1
    cover: float = 0.5
    alpha: float = 0.01
    min_effect: float = 0.8
    min_change: float = 0.1
    n_draws: int = 4
    chance_alpha: float = 0.05
    min_size: int = 5


@dataclass(frozen=True)
class Cluster:
    """One prediction strategy of a class.

    Attributes
    ----------
    predicted_class : int
    cluster : int
        Number within the class, 0 for the largest.
    members : list of int
        Positions of the member cases in the results list.
    accuracy : float
        Share of members whose label equals the prediction; NaN without labels.
    mean_map : torch.Tensor
        ``(*grid)`` mean relevance distribution of the members (sums to 1).
    distinct : float
        Total-variation distance between the cluster's mean map and a uniform map.
    misplaced : float
        Share of the concentrated relevance that lies outside the evidence (NaN when
        ``distinct`` is 0).
    case_misplaced : float
        Mean over the members of the share of their own relevance outside the evidence.
    p_value : float
        Two-sided Wilcoxon signed-rank p-value of the members' changes under removal of the
        region against their nulls', Holm-corrected over the audit's family of tests (NaN: not
        tested, or too few members for the test to reach ``alpha``).
    exemplars : list of int
        Positions (in the results list) of the members nearest the cluster's centroid.
    flagged : bool
    reason : str
        Why the cluster is flagged, undecided or cleared, in words with its numbers ("" when it
        was no candidate).
    effect : float
        Share of tested members whose change exceeds their null's (ties count half; NaN: not
        tested).
    verdict : str
        ``"flagged"``, ``"not flagged"`` or ``"undecided"`` (the test could not judge).
    region : tuple of int
        Flat summary cells removed by the test (empty: no candidate).
    change : float
        Members' mean absolute change of the predicted-class probability when the region is
        removed.
    null_change : float
        Members' mean absolute change when as much evidence-free input elsewhere is removed.
    n_tested : int
        Members in the test (those for which the region holds none of their own evidence).
    flagged_members : list of int
        Positions of the tested members of a flagged cluster whose own change goes further, in
        the cluster's direction, than each of their null removals (the flagged cases; empty
        unless flagged).
    hotspot : int
        -1 for a SpRAy cluster; for a hotspot group (:mod:`medlens.audit.hotspots`), the flat
        summary cell its members' own maps point at off their evidence, outside the region of
        the cluster they belong to (``cluster`` then numbers the class's hotspot groups).
    """

    predicted_class: int
    cluster: int
    members: list[int]
    accuracy: float
    mean_map: torch.Tensor
    distinct: float
    misplaced: float
    case_misplaced: float
    p_value: float
    exemplars: list[int]
    flagged: bool
    reason: str = ""
    effect: float = math.nan
    verdict: str = "not flagged"
    region: tuple[int, ...] = ()
    change: float = math.nan
    null_change: float = math.nan
    n_tested: int = 0
    flagged_members: list[int] = field(default_factory=list)
    hotspot: int = -1

    @property
    def size(self) -> int:
        return len(self.members)

@dataclass(frozen=True)
class ClassStrategies:
    """The clusters of one predicted class, the spectral analysis behind them, and the hotspot
    groups of the members their clusters' regions miss (tested the same way)."""

    predicted_class: int
    members: list[int]
    clustering: Clustering
    clusters: list[Cluster]
    hotspots: list[Cluster] = field(default_factory=list)


@dataclass(frozen=True)
class Strategies:
    """SpRAy over a whole audit.

    Attributes
    ----------
    method : str
        The attribution method whose maps were clustered.
    grid : tuple of int
        Shape of a map summary.
    classes : list of ClassStrategies
    rule : FlagRule
    chance : bool
        The predictions are no better than always answering the most frequent audited label
        (:func:`better_than_chance` at ``rule.chance_alpha``): no strategy, flagged or not, is
        cleared, since a model that uses no evidence has no "where the evidence should be" to keep to.
    """

    method: str
    grid: tuple[int, ...]
    classes: list[ClassStrategies]
    rule: FlagRule = field(default_factory=FlagRule)
    chance: bool = False

    def flagged(self) -> list[Cluster]:
        """The flagged clusters, then the flagged hotspot groups."""
        return ([c for cs in self.classes for c in cs.clusters if c.flagged]
                + [c for cs in self.classes for c in cs.hotspots if c.flagged])

    def flagged_cases(self) -> list[int]:
        """Positions of the flagged cases (:attr:`Cluster.flagged_members` of every flagged
        cluster and hotspot group), sorted."""
        return sorted({i for c in self.flagged() for i in c.flagged_members})

    def assignments(self, results: Sequence[CaseResult],
                    class_names: Sequence[str] = ()) -> list[tuple[str, int, int, int, str]]:
        """Rows ``(case, class, cluster, flagged case 0/1, class name)`` in results order (``clusters.csv``)."""
        from medlens.audit.store import class_name

        rows: dict[int, tuple[str, int, int, int, str]] = {}
        hit = set(self.flagged_cases())
        for cs in self.classes:
            for c in cs.clusters:
                for i in c.members:
                    rows[i] = (results[i].case, cs.predicted_class, c.cluster, int(i in hit),
                               class_name(cs.predicted_class, class_names))
        return [rows[i] for i in sorted(rows)]


def paired_test(changes: torch.Tensor, nulls: torch.Tensor) -> tuple[float, float, float]:
    """Two-sided Wilcoxon signed-rank test that ``changes`` differ from their paired ``nulls``.

    Returns ``(p, effect, best_p)``: the p-value, the share of pairs whose difference has the sign
    of the mean difference (ties count half), and the smallest p-value ``n`` pairs could give
    (all differences of one sign), which says whether the test had the power to flag at all.
    """
    from scipy.stats import wilcoxon

    d = (changes - nulls).double().numpy()
    n = len(d)
    agree = d * np.sign(d.mean()) if d.mean() != 0 else d
    effect = float(((agree > 0).sum() + 0.5 * (agree == 0).sum()) / n)
    p = float(wilcoxon(d, zero_method="zsplit").pvalue) if (d != 0).any() else 1.0
    best = float(wilcoxon(np.arange(1, n + 1, dtype=float)).pvalue)
    return p, effect, best


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error), in the input's order; NaN stays NaN."""
    order = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running, m = 0.0, len(order)
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def better_than_chance(results: Sequence[CaseResult], level: float) -> bool | None:
    """Whether the predictions beat always answering the most frequent label (one-sided binomial
    test at ``level``, :func:`medlens.evaluation.chance.chance_record`); ``None`` without labels."""
    from medlens.evaluation.chance import chance_record

    record = chance_record(((r.label, r.predicted) for r in results), level)
    return None if record is None else record["better"]


def find_strategies(
    results: Sequence[CaseResult],
    settings: AuditSettings,
    grid: Sequence[int],
    *,
    method: str | None = None,
    rule: FlagRule = FlagRule(),
    removal: Removal | None = None,
    n_exemplars: int = 4,
    max_clusters: int = 8,
    n_clusters: int | None = None,
) -> Strategies:
    """Cluster each predicted class's maps and flag candidate shortcuts.

    Parameters
    ----------
    results : sequence of CaseResult
        The audit's cases (:meth:`medlens.audit.store.AuditStore.results`).
    settings : AuditSettings
    grid : sequence of int
        The summary grid (:func:`medlens.audit.summary.summary_grid` of the input's shape).
    method : str, optional
        The method whose maps are clustered; default ``settings.cluster_method``.
    rule : FlagRule
    removal : callable, optional
        ``removal(region cells, positions) -> drops`` (:mod:`medlens.audit.intervention`);
        without it every candidate is undecided.
    n_exemplars : int
    max_clusters, n_clusters : int
        Passed to :func:`medlens.audit.spray.spectral_clusters`.
    """
    method = settings.cluster_method if method is None else method
    if method not in settings.all_methods:
        raise InputError(f"method {method!r} was not run by this audit ({', '.join(settings.all_methods)})")
    m = settings.all_methods.index(method)
    grid = tuple(int(g) for g in grid)
    key = f"{method}.misplaced"
    evidence_all = torch.stack([r.evidence for r in results]).to(torch.float64) if results else None  # (N, G)
    spectral, pending = [], []
    for cls in sorted({r.predicted for r in results}):
        members = [i for i, r in enumerate(results) if r.predicted == cls]
        pts = torch.stack([results[i].summaries[m] for i in members]).to(torch.float64)  # (n, G)
        clustering = spectral_clusters(pts, max_clusters=max_clusters, n_clusters=n_clusters, seed=settings.seed)
        data = _ClassData(
            cls, members, pts, pts**2, evidence_all[members],
            torch.tensor([results[i].metrics.get(key, math.nan) for i in members], dtype=torch.float64),
            torch.tensor([math.nan if results[i].label is None else float(results[i].label == cls) for i in members],
                         dtype=torch.float64))
        clusters = [_strategy(data, torch.nonzero(clustering.labels == c).reshape(-1), c, -1, grid, rule, n_exemplars)
                    for c in range(clustering.n_clusters)]
        # members whose own maps point off the evidence outside their cluster's region (hotspots.py)
        regions = [(torch.nonzero(clustering.labels == d["cluster"]).reshape(-1), d["region"])
                   for d in clusters if d["candidate"]]
        groups = missed_groups(hotspots(data.dist, data.evidence), regions, rule.min_size)
        spots = [_strategy(data, torch.tensor(rows), j, cell, grid, rule, n_exemplars)
                 for j, (cell, rows) in enumerate(groups)]
        for d in spots:  # a group is tested at its hotspot and the neighbouring cells off its evidence
            d["region"] = hotspot_region(d["hotspot"], d.pop("off"), grid) if d["candidate"] else ()
        for d in clusters + spots:
            d.pop("off", None)
            if d["candidate"]:
                d.update(_removal_test(results, evidence_all, d["members"], d["region"], rule, removal))
        pending += clusters + spots
        spectral.append((cls, members, clustering))
    # the family: the tests that could reach `alpha` at all (a perfect separation of their size);
    # which tests these are depends on the numbers of tested cases only, never on their changes
    family = [d["test"][2] < rule.alpha for d in pending]
    adjusted = holm([d["test"][0] if f else math.nan for d, f in zip(pending, family)])
    # what a perfect separation would have reached after the correction (>= alpha: undecided)
    best = [b if f else math.inf for b, f in
            zip(holm([d["test"][2] if f else math.nan for d, f in zip(pending, family)]), family)]
    chance = better_than_chance(results, rule.chance_alpha) is False
    decided = [_decide(d, p, b, rule, chance) for d, p, b in zip(pending, adjusted, best)]
    classes = [ClassStrategies(cls, members, clustering,
                               [c for c in decided if c.predicted_class == cls and c.hotspot < 0],
                               [c for c in decided if c.predicted_class == cls and c.hotspot >= 0])
               for cls, members, clustering in spectral]
    return Strategies(method, grid, classes, rule, chance)


@dataclass(frozen=True)
class _ClassData:
    """One predicted class's cases: positions, summaries, distributions, evidence, own misplaced
    shares and correctness (rows in the order of ``members``)."""

    cls: int
    members: list[int]
    pts: torch.Tensor
    dist: torch.Tensor
    evidence: torch.Tensor
    own_share: torch.Tensor
    correct: torch.Tensor


def _strategy(data: _ClassData, local: torch.Tensor, number: int, hotspot: int, grid: tuple[int, ...],
              rule: FlagRule, n_exemplars: int) -> dict:
    """The map-based fields of a cluster or hotspot group (rows ``local`` of the class) and its region."""
    uniform = 1.0 / data.dist.shape[1]
    p_c = data.dist[local].mean(0)  # (G,) the strategy's mean relevance distribution
    excess = (p_c - uniform).clamp(min=0)  # where it concentrates its relevance
    distinct = float(excess.sum())
    # a cell is evidence for the strategy when at least `rule.evidence_share` of its members
    # may hold evidence there (their own lesion, or the interior without a mask)
    off = (data.evidence[local].mean(0) < rule.evidence_share).to(torch.float64)  # (G,)
    misplaced = float((excess * off).sum() / distinct) if distinct > 0 else math.nan
    centre = data.pts[local].mean(0)
    nearest = torch.argsort((data.pts[local] - centre).norm(dim=1), stable=True)[:n_exemplars]
    acc = data.correct[local]
    acc = acc[~acc.isnan()]
    shares = data.own_share[local]
    shares = shares[~shares.isnan()]
    candidate = (len(local) >= rule.min_size and distinct >= rule.min_difference
                 and not math.isnan(misplaced) and misplaced >= rule.share)
    return dict(
        predicted_class=data.cls, cluster=number, hotspot=hotspot, members=[data.members[int(j)] for j in local],
        accuracy=float(acc.mean()) if len(acc) else math.nan,
        mean_map=p_c.reshape(grid).to(torch.float32), distinct=distinct, misplaced=misplaced,
        case_misplaced=float(shares.mean()) if len(shares) else math.nan,
        exemplars=[data.members[int(local[j])] for j in nearest], candidate=candidate,
        region=cluster_region(excess, off, grid, rule.cover) if candidate else (), off=off,
        test=(math.nan, math.nan, math.nan), measured=False,
    )


def _removal_test(results, evidence: torch.Tensor, member_pos: list[int], region: tuple[int, ...],
                  rule: FlagRule, removal: Removal | None) -> dict:
    """The changes of removing ``region`` from the members and of their null draws, and their test."""
    cells = list(region)
    # a member is testable when the region holds none of its own possible evidence
    tested = [i for i in member_pos if cells and float(evidence[i, cells].max()) == 0.0]
    out = {"region": region, "n_tested": len(tested)}
    if removal is None or not region or len(tested) < rule.min_size:
        return out
    changes = removal(region, tested)
    if changes is None:
        return out
    own, null = changes[:, 0], changes[:, 1:].nanmean(1)  # (n,) signed: a shortcut may push either way
    keep = ~(own.isnan() | null.isnan())
    tested = [i for i, k in zip(tested, keep.tolist()) if k]
    own, null = own[keep], null[keep]
    out["n_tested"] = len(tested)
    if len(tested) < rule.min_size:
        return out
    sign = 1.0 if float((own - null).mean()) >= 0 else -1.0
    draws = changes[keep][:, 1:]  # (n, draws)
    # a flagged case: the region moves its prediction further, in the cluster's direction, than
    # every one of its own null removals (a per-case randomisation test at level 1 / (draws + 1))
    beyond = ((sign * own[:, None] > sign * draws) | draws.isnan()).all(1)
    return {**out, "measured": True, "test": paired_test(own, null), "change": float(own.mean()),
            "null_change": float(null.mean()), "hits": [i for i, b in zip(tested, beyond.tolist()) if b]}


def _decide(d: dict, p_value: float, best_p: float, rule: FlagRule, chance: bool) -> Cluster:
    """The cluster with its verdict from its corrected removal test."""
    effect = d["test"][1]
    verdict, reason = "not flagged", ""
    if d["candidate"]:
        where = (f"{d['misplaced']:.0%} of the relevance these {len(d['members'])} cases concentrate lies outside "
                 f"where the class evidence should be")
        if d["hotspot"] >= 0:
            where = (f"these {len(d['members'])} cases' own maps point hardest at summary cell {d['hotspot']} off their "
                     f"evidence, outside the region their strategies were tested at; {where}")
        if not d["measured"]:
            why = ("the removal test could not be run (the model was not available)"
                   if d.get("n_tested", 0) >= rule.min_size else
                   f"too few cases to test whether removing that region changes the predictions "
                   f"({d.get('n_tested', 0)} without their own evidence there; at least {rule.min_size})")
            verdict, reason = "undecided", f"{where}, but {why}"
        else:
            numbers = (f"removing it changes the predicted probability by {-d['change']:+.2f} on average, against "
                       f"{-d['null_change']:+.2f} when as much evidence-free input elsewhere is removed "
                       f"(the difference has one sign in {effect:.0%} of {d['n_tested']} cases; two-sided Wilcoxon "
                       f"signed-rank test, Holm-corrected p = {p_value:.1e})")
            if best_p >= rule.alpha:
                verdict = "undecided"
                reason = (f"{where}, but {d['n_tested']} cases are too few for the removal test to reach the "
                          f"corrected level {rule.alpha}")
            elif (p_value < rule.alpha and effect >= rule.min_effect
                  and abs(d["change"] - d["null_change"]) >= rule.min_change
                  and abs(d["change"]) > abs(d["null_change"])):  # it matters more than elsewhere
                verdict, reason = "flagged", f"{where}; {numbers}"
            elif chance:
                verdict = "undecided"
                effect_words = "so small an effect" if p_value < rule.alpha else "the absence of an effect"
                reason = (f"{where}; {numbers}, but the model is no better than chance on the audited labels, "
                          f"so {effect_words} does not show that it uses the evidence")
            elif p_value < rule.alpha:  # significant, but too small to be the shortcut the flag is for
                reason = (f"{where}, but the predictions depend on it less than a flag needs (a difference from "
                          f"elsewhere of at least {rule.min_change:.2f}, of one sign in at least {rule.min_effect:.0%} "
                          f"of the cases): {numbers}")
            else:
                reason = f"{where}, but the predictions do not depend on it: {numbers}"
    hits = d.get("hits", []) if verdict == "flagged" else []
    fields = {k: v for k, v in d.items() if k not in ("candidate", "test", "measured", "hits")}
    return Cluster(**fields, p_value=p_value, effect=effect, flagged=verdict == "flagged", reason=reason,
                   verdict=verdict, flagged_members=hits)
