"""Strategies: a planted corner-tag strategy is flagged, lesion-driven strategies are not."""

from __future__ import annotations

import torch

from medlens.audit.cases import AuditSettings, CaseResult
from medlens.audit.strategies import FlagRule, find_strategies
from medlens.audit.summary import evidence_grid, misplaced_relevance, summarise_maps

SIZE, GRID = 32, (8, 8)


def _case(i: int, cls: int, label: int, centre, mask_centre, gen) -> CaseResult:
    yy, xx = torch.meshgrid(torch.arange(SIZE, dtype=torch.float64), torch.arange(SIZE, dtype=torch.float64), indexing="ij")
    heat = torch.exp(-((yy - centre[0]) ** 2 + (xx - centre[1]) ** 2) / 8) + 0.05 * torch.rand(SIZE, SIZE, generator=gen, dtype=torch.float64)
    mask = torch.zeros(1, SIZE, SIZE, dtype=torch.bool)
    if mask_centre is not None:
        mask[0, mask_centre[0] - 3:mask_centre[0] + 3, mask_centre[1] - 3:mask_centre[1] + 3] = True
    own = mask if label == cls else None
    return CaseResult(
        index=i, case=str(i), label=label, predicted=cls, probabilities=(0.5, 0.5),
        metrics={"gradient.misplaced": float(misplaced_relevance(heat[None], own)[0])},
        summaries=summarise_maps(heat[None], GRID), evidence=evidence_grid(own, (SIZE, SIZE), GRID, 1)[0],
    )


def planted_cohort(seed: int = 0) -> tuple[list[CaseResult], set[int]]:
    gen = torch.Generator().manual_seed(seed)
    results, tagged = [], set()
    for i in range(120):
        if i % 3 == 2:  # a third of the "lesion" predictions look at a corner tag, without a lesion
            results.append(_case(i, 1, 0, (1.5, 1.5), None, gen))
            tagged.add(i)
        else:  # the others look at their lesion, wherever it is
            c = tuple(int(v) for v in torch.randint(8, 24, (2,), generator=gen))
            results.append(_case(i, 1, 1, c, c, gen))
    for i in range(120, 180):  # "no lesion": diffuse relevance over the interior
        c = tuple(int(v) for v in torch.randint(10, 22, (2,), generator=gen))
        results.append(_case(i, 0, 0, c, None, gen))
    return results, tagged


def test_corner_strategy_is_flagged_and_lesion_strategies_are_not():
    results, tagged = planted_cohort()
    settings = AuditSettings(methods=("gradient",), cluster_method="gradient", metrics=())
    strategies = find_strategies(results, settings, GRID)
    flagged = {results[i].index for c in strategies.flagged() for i in c.members}
    assert flagged == tagged
    tag_cluster = strategies.flagged()[0]
    assert tag_cluster.accuracy == 0.0 and tag_cluster.misplaced > 0.5 and tag_cluster.p_value < 1e-6
    assert tag_cluster.mean_map.shape == GRID and tag_cluster.mean_map[0, 0] == tag_cluster.mean_map.max()
    for cs in strategies.classes:
        for c in cs.clusters:
            if not c.flagged:
                assert c.misplaced < FlagRule().share
    rows = strategies.assignments(results)
    assert [r[0] for r in rows] == [str(i) for i in range(180)]
    assert {r[3] for r in rows if int(r[0]) in tagged} == {1}
    assert all(len(c.exemplars) == 4 and set(c.exemplars) <= set(c.members) for cs in strategies.classes for c in cs.clusters)


def test_a_stricter_rule_flags_nothing():
    results, _ = planted_cohort(seed=1)
    settings = AuditSettings(methods=("gradient",), cluster_method="gradient", metrics=())
    assert find_strategies(results, settings, GRID, rule=FlagRule(share=0.99)).flagged() == []
