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

A cluster is flagged as a candidate shortcut (a "Clever Hans" strategy, Lapuschkin et al.,
Nature Communications 2019) only against a null measured inside the audited data: its members'
own off-evidence shares (the share of each member's relevance outside its evidence) must be
larger than those of the other cases *predicted as the same class* (the class's other
strategies), by a one-sided Mann-Whitney U test whose p-values are Holm-corrected over every
tested cluster of the audit (family-wise level ``alpha``), with a common-language effect size
(the probability that a member's share exceeds a non-member's) of at least ``min_effect``, and
its concentrated relevance must lie mostly off the evidence (``misplaced >= share``). Comparing
with the same class's cases keeps the evidence the same kind on both sides (a lesion mask for
cases predicted as their label, the interior otherwise); comparing with other strategies rather
than with a uniform map is what keeps a model whose maps are all diffuse (undertrained, or
looking at texture everywhere) from having every cluster flagged.

A cluster whose concentrated relevance lies mostly off the evidence but which the test cannot
judge - its class has no other strategy of at least ``min_size`` cases to compare with, or even
a perfect separation could not reach the corrected level - is reported as **undecided**, never
flagged. ``verdict`` says which: ``"flagged"``, ``"not flagged"`` or ``"undecided"``.

The settings (``FlagRule``) were chosen on the design grid of
``benchmarks/audit_calibration.py`` and accepted on its held-out grid (other seeds, training
lengths, image sizes, marker sizes, corners, intensities and shortcut strengths).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from medlens.audit.cases import AuditSettings, CaseResult
from medlens.audit.spray import Clustering, spectral_clusters
from medlens.errors import InputError

__all__ = ["ClassStrategies", "Cluster", "FlagRule", "Strategies", "find_strategies"]


@dataclass(frozen=True)
class FlagRule:
    """When a cluster counts as a candidate shortcut (see the module docstring).

    Attributes
    ----------
    share : float
        Least misplaced share of the cluster's concentrated relevance.
    min_difference : float
        Least total-variation distance between the cluster's mean map and a uniform map.
    evidence_share : float
        Share of members for which a cell must be possible evidence to count as evidence.
    alpha : float
        Family-wise level of the Holm-corrected one-sided Mann-Whitney U tests.
    min_effect : float
        Least probability that a member's off-evidence share exceeds that of a case of another
        strategy of the same class.
    min_size : int
        Smallest cluster that can be flagged, and smallest comparison group.
    """

    share: float = 0.12
    min_difference: float = 0.02
    evidence_share: float = 0.1
    alpha: float = 0.01
    min_effect: float = 0.8
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
        One-sided Mann-Whitney U p-value, Holm-corrected over the audit's tested clusters: the
        members' off-evidence shares exceed those of the class's other cases (NaN: not tested).
    effect : float
        Probability that a member's off-evidence share exceeds that of one of the class's other
        cases (NaN: not tested).
    exemplars : list of int
        Positions (in the results list) of the members nearest the cluster's centroid.
    flagged : bool
    reason : str
        Why the cluster is flagged or undecided, in words with its numbers ("" otherwise).
    verdict : str
        ``"flagged"``, ``"not flagged"`` or ``"undecided"`` (the test could not judge).
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

    @property
    def size(self) -> int:
        return len(self.members)

@dataclass(frozen=True)
class ClassStrategies:
    """The clusters of one predicted class and the spectral analysis behind them."""

    predicted_class: int
    members: list[int]
    clustering: Clustering
    clusters: list[Cluster]


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
    """

    method: str
    grid: tuple[int, ...]
    classes: list[ClassStrategies]
    rule: FlagRule = field(default_factory=FlagRule)

    def flagged(self) -> list[Cluster]:
        return [c for cs in self.classes for c in cs.clusters if c.flagged]

    def assignments(self, results: Sequence[CaseResult]) -> list[tuple[str, int, int, int]]:
        """Rows ``(case, class, cluster, flagged 0/1)`` in results order (``clusters.csv``)."""
        rows: dict[int, tuple[str, int, int, int]] = {}
        for cs in self.classes:
            for c in cs.clusters:
                for i in c.members:
                    rows[i] = (results[i].case, cs.predicted_class, c.cluster, int(c.flagged))
        return [rows[i] for i in sorted(rows)]


def _greater(members: torch.Tensor, others: torch.Tensor) -> tuple[float, float, float]:
    """One-sided Mann-Whitney U test that ``members`` tend to exceed ``others``.

    Returns ``(p, effect, best_p)``: the p-value, the common-language effect size
    ``P(member > other) + P(tie) / 2``, and the smallest p-value samples of these sizes could
    give (a perfect separation), which says whether the test had the power to flag at all.
    """
    from scipy.stats import mannwhitneyu

    a, b = members.double().numpy(), others.double().numpy()
    test = mannwhitneyu(a, b, alternative="greater")
    effect = float(test.statistic) / (len(a) * len(b))
    best = mannwhitneyu(np.arange(len(b), len(b) + len(a)), np.arange(len(b)), alternative="greater")
    return float(test.pvalue), effect, float(best.pvalue)


def _holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment (family-wise error), in the input's order; NaN stays NaN."""
    order = sorted((p, i) for i, p in enumerate(p_values) if not math.isnan(p))
    adjusted = [math.nan] * len(p_values)
    running, m = 0.0, len(order)
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def find_strategies(
    results: Sequence[CaseResult],
    settings: AuditSettings,
    grid: Sequence[int],
    *,
    method: str | None = None,
    rule: FlagRule = FlagRule(),
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
    spectral, pending = [], []
    for cls in sorted({r.predicted for r in results}):
        members = [i for i, r in enumerate(results) if r.predicted == cls]
        pts = torch.stack([results[i].summaries[m] for i in members]).to(torch.float64)  # (n, G)
        dist = pts**2  # (n, G) relevance distributions
        evidence = torch.stack([results[i].evidence for i in members]).to(torch.float64)  # (n, G)
        clustering = spectral_clusters(pts, max_clusters=max_clusters, n_clusters=n_clusters, seed=settings.seed)
        own_share = torch.tensor([results[i].metrics.get(key, math.nan) for i in members], dtype=torch.float64)
        correct = torch.tensor(
            [math.nan if results[i].label is None else float(results[i].label == cls) for i in members],
            dtype=torch.float64,
        )
        uniform = 1.0 / dist.shape[1]
        for c in range(clustering.n_clusters):
            inside = clustering.labels == c
            local = torch.nonzero(inside).reshape(-1)
            size = int(inside.sum())
            p_c = dist[inside].mean(0)  # (G,) the cluster's mean relevance distribution
            excess = (p_c - uniform).clamp(min=0)  # where the cluster concentrates its relevance
            distinct = float(excess.sum())
            # a cell is evidence for the cluster when at least `rule.evidence_share` of its members
            # may hold evidence there (their own lesion, or the interior without a mask)
            off = (evidence[inside].mean(0) < rule.evidence_share).to(torch.float64)  # (G,)
            misplaced = float((excess * off).sum() / distinct) if distinct > 0 else math.nan
            centre = pts[inside].mean(0)
            nearest = torch.argsort((pts[inside] - centre).norm(dim=1), stable=True)[:n_exemplars]
            acc = correct[inside]
            acc = acc[~acc.isnan()]
            shares = own_share[inside]
            rest = own_share[~inside]
            shares, rest = shares[~shares.isnan()], rest[~rest.isnan()]
            candidate = (size >= rule.min_size and distinct >= rule.min_difference
                         and not math.isnan(misplaced) and misplaced >= rule.share)
            test = (math.nan, math.nan, math.nan)
            if candidate and len(shares) >= rule.min_size and len(rest) >= rule.min_size:
                test = _greater(shares, rest)
            pending.append(dict(
                predicted_class=cls, cluster=c, members=[members[int(j)] for j in local],
                accuracy=float(acc.mean()) if len(acc) else math.nan,
                mean_map=p_c.reshape(grid).to(torch.float32), distinct=distinct, misplaced=misplaced,
                case_misplaced=float(shares.mean()) if len(shares) else math.nan,
                exemplars=[members[int(local[j])] for j in nearest], candidate=candidate, test=test,
                n_rest=len(rest),
            ))
        spectral.append((cls, members, clustering))
    adjusted = _holm([d["test"][0] for d in pending])
    best = _holm([d["test"][2] for d in pending])  # what a perfect separation would have reached
    decided = [_decide(d, p, b, rule) for d, p, b in zip(pending, adjusted, best)]
    classes = [ClassStrategies(cls, members, clustering, [c for c in decided if c.predicted_class == cls])
               for cls, members, clustering in spectral]
    return Strategies(method, grid, classes, rule)


def _decide(d: dict, p_value: float, best_p: float, rule: FlagRule) -> Cluster:
    """The cluster with its verdict from its corrected test."""
    effect = d["test"][1]
    verdict, reason = "not flagged", ""
    if d["candidate"]:
        if math.isnan(p_value) or best_p >= rule.alpha:
            verdict = "undecided"
            reason = (
                f"{d['misplaced']:.0%} of the relevance these {len(d['members'])} cases concentrate lies outside "
                f"where the class evidence should be, but the class has "
                + ("no other strategy to compare them with" if math.isnan(p_value) else
                   f"too few other cases ({d['n_rest']}) for the test to reach the corrected level {rule.alpha}")
            )
        elif p_value < rule.alpha and effect >= rule.min_effect:
            verdict = "flagged"
            reason = (
                f"{d['misplaced']:.0%} of the relevance these {len(d['members'])} cases concentrate lies outside "
                f"where the class evidence should be, more than in the class's other cases "
                f"(P(share higher) = {effect:.2f}; one-sided Mann-Whitney U, Holm-corrected p = {p_value:.1e})"
            )
    fields = {k: v for k, v in d.items() if k not in ("candidate", "test", "n_rest")}
    return Cluster(**fields, p_value=p_value, effect=effect, flagged=verdict == "flagged", reason=reason,
                   verdict=verdict)
