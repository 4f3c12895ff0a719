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


def _diffuse_cohort(seed: int = 0) -> list[CaseResult]:
    """Maps that concentrate nowhere in particular (an undertrained model): noise everywhere."""
    gen = torch.Generator().manual_seed(seed)
    results = []
    for i in range(150):
        cls = int(i % 2)
        heat = torch.rand(SIZE, SIZE, generator=gen, dtype=torch.float64) ** 4
        mask = torch.zeros(1, SIZE, SIZE, dtype=torch.bool)
        c = [int(v) for v in torch.randint(8, 24, (2,), generator=gen)]
        mask[0, c[0] - 3:c[0] + 3, c[1] - 3:c[1] + 3] = True
        own = mask if cls == 1 else None
        results.append(CaseResult(
            index=i, case=str(i), label=cls, predicted=cls, probabilities=(0.5, 0.5),
            metrics={"gradient.misplaced": float(misplaced_relevance(heat[None], own)[0])},
            summaries=summarise_maps(heat[None], GRID), evidence=evidence_grid(own, (SIZE, SIZE), GRID, 1)[0],
        ))
    return results


def test_diffuse_maps_flag_nothing_whatever_the_clusters():
    """The null is the class's other strategies, not a uniform map: maps that are all alike in
    being diffuse give no cluster an off-evidence share above its class's others."""
    results = _diffuse_cohort()
    settings = AuditSettings(methods=("gradient",), cluster_method="gradient", metrics=())
    for k in (2, 4, 6):
        strategies = find_strategies(results, settings, GRID, n_clusters=k)
        assert strategies.flagged() == [], [(c.misplaced, c.effect, c.p_value) for c in strategies.flagged()]


def test_a_class_with_one_strategy_off_the_evidence_is_undecided_not_flagged():
    results, tagged = planted_cohort()
    only_tags = [r for r in results if r.index in tagged or r.predicted == 0]
    settings = AuditSettings(methods=("gradient",), cluster_method="gradient", metrics=())
    strategies = find_strategies(only_tags, settings, GRID, n_clusters=1)
    tag_class = [cs for cs in strategies.classes if cs.predicted_class == 1][0]
    (cluster,) = tag_class.clusters
    assert not cluster.flagged and cluster.verdict == "undecided"
    assert "no other strategy" in cluster.reason
    assert strategies.flagged() == []


def test_holm_adjustment_matches_its_definition():
    from medlens.audit.strategies import _holm

    p = [0.01, 0.04, float("nan"), 0.03, 0.005]
    # sorted: 0.005 (x4), 0.01 (x3), 0.03 (x2), 0.04 (x1), running maximum
    assert _holm(p)[4] == 0.02 and _holm(p)[0] == 0.03 and _holm(p)[3] == 0.06 and _holm(p)[1] == 0.06
    assert _holm(p)[2] != _holm(p)[2]


def test_mann_whitney_effect_and_best_attainable_p():
    from medlens.audit.strategies import _greater

    p, effect, best = _greater(torch.tensor([5.0, 6.0, 7.0]), torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert effect == 1.0 and abs(p - best) < 1e-12 and abs(best - 1 / 35) < 1e-9  # 1 / C(7, 3)
