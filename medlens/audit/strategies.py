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
Nature Communications 2019) when its misplaced share is at least ``share``, its concentration at
least ``min_difference``, and its members put significantly more relevance on those misplaced
cells than a uniform map would (one-sided Wilcoxon signed-rank test, ``p < alpha``). Measured
on the shortcut benchmark (benchmarks/audit.py, reference CNNs trained with seeds 0 and 1): the
clusters made of marked images score 0.15-0.39, the other clusters of the shortcut models at
most 0.11, those of the models trained on the clean benchmark at most 0.07. The default
threshold 0.12 sits between; it is a setting (``FlagRule``), not a law.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

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
        Significance level of the one-sided Wilcoxon signed-rank test.
    min_size : int
        Smallest cluster that can be flagged.
    """

    share: float = 0.12
    min_difference: float = 0.02
    evidence_share: float = 0.1
    alpha: float = 0.01
    min_size: int = 3


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
        One-sided Wilcoxon signed-rank p-value: members put more relevance on the cluster's
        misplaced cells than a uniform map (NaN when there are none).
    exemplars : list of int
        Positions (in the results list) of the members nearest the cluster's centroid.
    flagged : bool
    reason : str
        Why the cluster is flagged, in words with its numbers ("" when not flagged).
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


def _wilcoxon_greater(differences: torch.Tensor) -> float:
    """One-sided Wilcoxon signed-rank p-value that the differences are centred above 0."""
    from scipy.stats import wilcoxon

    d = differences[differences != 0]
    if len(d) < 1:
        return math.nan
    return float(wilcoxon(d.numpy(), alternative="greater").pvalue)


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
    classes = []
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
        clusters = []
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
            p_value = math.nan
            if distinct > 0 and bool((excess * off).any()):
                weight = (excess > 0).to(torch.float64) * off  # (G,) concentrated, misplaced cells
                score = dist[inside] @ weight  # (size,) each member's relevance on them
                p_value = _wilcoxon_greater(score - float(weight.sum()) * uniform)
            centre = pts[inside].mean(0)
            nearest = torch.argsort((pts[inside] - centre).norm(dim=1), stable=True)[:n_exemplars]
            acc = correct[inside]
            acc = acc[~acc.isnan()]
            shares = own_share[inside]
            shares = shares[~shares.isnan()]
            flagged = (
                size >= rule.min_size
                and distinct >= rule.min_difference
                and misplaced >= rule.share
                and p_value < rule.alpha
            )
            reason = ""
            if flagged:
                reason = (
                    f"{misplaced:.0%} of the relevance these {size} cases concentrate (beyond a uniform map) lies "
                    f"outside where the class evidence should be (one-sided Wilcoxon signed-rank p = {p_value:.1e})"
                )
            clusters.append(Cluster(
                predicted_class=cls, cluster=c, members=[members[int(j)] for j in local],
                accuracy=float(acc.mean()) if len(acc) else math.nan,
                mean_map=p_c.reshape(grid).to(torch.float32), distinct=distinct, misplaced=misplaced,
                case_misplaced=float(shares.mean()) if len(shares) else math.nan, p_value=p_value,
                exemplars=[members[int(local[j])] for j in nearest], flagged=flagged, reason=reason,
            ))
        classes.append(ClassStrategies(cls, members, clustering, clusters))
    return Strategies(method, grid, classes, rule)
