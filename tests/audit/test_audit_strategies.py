"""Strategies: the map-based candidate filter and the removal test, with known-answer removals.

The removal provider here is a known answer, not a model: removing the corner changes the
prediction of the tagged cases by a stated amount and of nobody else (``tests/audit/
test_audit_intervention.py`` runs the same verdicts through real models).
"""

from __future__ import annotations

from dataclasses import replace

import torch

from medlens.audit.cases import AuditSettings, CaseResult
from medlens.audit.strategies import FlagRule, better_than_chance, find_strategies
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


def corner_removal(tagged_idx: set[int], results, effect: float = 0.4, draws: int = FlagRule().n_draws):
    """``removal(cells, positions)``: removing cell 0 lowers a tagged case's probability by
    ``effect``; any other removal changes it by a small deterministic jitter."""
    def removal(cells, positions):
        rows = []
        for p in positions:
            idx = results[p].index
            jitter = [0.01 * ((idx * 7 + j * 3) % 5 - 2) for j in range(draws + 1)]
            own = jitter[0] + (effect if (idx in tagged_idx and 0 in cells) else 0.0)
            rows.append([own, *jitter[1:]])
        return torch.tensor(rows, dtype=torch.float64)
    return removal


SETTINGS = AuditSettings(methods=("gradient",), cluster_method="gradient", metrics=())


def test_a_corner_strategy_that_drives_the_predictions_is_flagged_and_lesion_strategies_are_not():
    results, tagged = planted_cohort()
    strategies = find_strategies(results, SETTINGS, GRID, removal=corner_removal(tagged, results))
    flagged = {results[i].index for i in strategies.flagged_cases()}
    assert flagged == tagged
    (tag_cluster,) = strategies.flagged()
    assert tag_cluster.verdict == "flagged" and 0 in tag_cluster.region
    assert tag_cluster.accuracy == 0.0 and tag_cluster.misplaced > 0.5 and tag_cluster.p_value < 1e-6
    assert tag_cluster.effect == 1.0 and abs(tag_cluster.change - tag_cluster.null_change - 0.4) < 0.03
    assert "Wilcoxon" in tag_cluster.reason and "p = " in tag_cluster.reason
    assert tag_cluster.mean_map.shape == GRID and tag_cluster.mean_map[0, 0] == tag_cluster.mean_map.max()
    for cs in strategies.classes:
        for c in cs.clusters:
            if c is not tag_cluster:
                assert c.verdict == "not flagged" and not c.flagged_members
    rows = strategies.assignments(results)
    assert [r[0] for r in rows] == [str(i) for i in range(180)]
    assert {int(r[0]) for r in rows if r[3] == 1} == tagged
    assert all(len(c.exemplars) == 4 and set(c.exemplars) <= set(c.members) for cs in strategies.classes for c in cs.clusters)


def test_maps_on_the_corner_of_a_model_that_ignores_it_are_not_flagged():
    """The maps sit on the tag, but removing it changes nothing: the map alone is no evidence."""
    results, tagged = planted_cohort()
    strategies = find_strategies(results, SETTINGS, GRID, removal=corner_removal(tagged, results, effect=0.0))
    assert strategies.flagged() == []
    tag_cluster = next(c for cs in strategies.classes for c in cs.clusters if 0 in c.region)
    assert tag_cluster.verdict == "not flagged" and "do not depend on it" in tag_cluster.reason


def test_a_small_change_is_significant_but_not_meaningful():
    results, tagged = planted_cohort()
    strategies = find_strategies(results, SETTINGS, GRID, removal=corner_removal(tagged, results, effect=0.05))
    assert strategies.flagged() == []
    tag_cluster = next(c for cs in strategies.classes for c in cs.clusters if 0 in c.region)
    assert tag_cluster.p_value < FlagRule().alpha and tag_cluster.change - tag_cluster.null_change < FlagRule().min_change
    # a significant but small effect is not called an absence of dependence
    assert "do not depend on it" not in tag_cluster.reason and "less than a flag needs" in tag_cluster.reason


def test_without_a_removal_test_every_candidate_is_undecided():
    results, _ = planted_cohort()
    strategies = find_strategies(results, SETTINGS, GRID)
    assert strategies.flagged() == []
    undecided = [c for cs in strategies.classes for c in cs.clusters if c.verdict == "undecided"]
    assert undecided and all("model was not available" in c.reason for c in undecided)


def test_a_cluster_too_small_for_the_test_is_undecided():
    results, tagged = planted_cohort()
    few = set(sorted(tagged)[:6])
    kept = [r for r in results if r.index in few or r.index not in tagged]
    strategies = find_strategies(kept, SETTINGS, GRID, removal=corner_removal(few, kept))
    tag_cluster = next(c for cs in strategies.classes for c in cs.clusters if 0 in c.region)
    # 6 members: a two-sided signed-rank test can reach 2 / 2**6 = 0.031 at best, not 0.01
    assert tag_cluster.verdict == "undecided" and "too few" in tag_cluster.reason and not tag_cluster.flagged


def test_no_effect_on_a_chance_level_model_is_undecided_not_cleared():
    results, tagged = planted_cohort()
    gen = torch.Generator().manual_seed(0)
    coin = torch.randint(0, 2, (len(results),), generator=gen).tolist()
    chance = [replace(r, label=int(c)) for r, c in zip(results, coin)]  # labels unrelated to predictions
    assert better_than_chance(chance, 0.05) is False
    strategies = find_strategies(chance, SETTINGS, GRID, removal=corner_removal(tagged, chance, effect=0.0))
    tag_cluster = next(c for cs in strategies.classes for c in cs.clusters if 0 in c.region)
    assert tag_cluster.verdict == "undecided" and "no better than chance" in tag_cluster.reason
    driven = find_strategies(chance, SETTINGS, GRID, removal=corner_removal(tagged, chance))
    assert {chance[i].index for i in driven.flagged_cases()} == tagged  # an effect is an effect, chance or not


def test_better_than_chance_is_a_binomial_test_against_the_majority_label():
    results, _ = planted_cohort()
    right = [replace(r, label=r.predicted) for r in results]
    assert better_than_chance(right, 0.05) is True
    unlabelled = [replace(r, label=None) for r in results]
    assert better_than_chance(unlabelled, 0.05) is None
    # always answering the majority label is not better than chance
    majority = [replace(r, predicted=0, label=0 if i % 4 else 1) for i, r in enumerate(results)]
    assert better_than_chance(majority, 0.05) is False


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


def test_diffuse_maps_of_a_model_that_depends_on_no_place_flag_nothing_whatever_the_clusters():
    results = _diffuse_cohort()
    for k in (2, 4, 6):
        strategies = find_strategies(results, SETTINGS, GRID, n_clusters=k, removal=corner_removal(set(), results))
        assert strategies.flagged() == [], [(c.misplaced, c.effect, c.p_value) for c in strategies.flagged()]


def test_holm_adjustment_matches_its_definition():
    from medlens.audit.strategies import holm

    p = [0.01, 0.04, float("nan"), 0.03, 0.005]
    # sorted: 0.005 (x4), 0.01 (x3), 0.03 (x2), 0.04 (x1), running maximum
    assert holm(p)[4] == 0.02 and holm(p)[0] == 0.03 and holm(p)[3] == 0.06 and holm(p)[1] == 0.06
    assert holm(p)[2] != holm(p)[2]


def test_signed_rank_effect_and_best_attainable_p():
    from scipy.stats import wilcoxon

    from medlens.audit.strategies import paired_test

    changes = torch.tensor([0.5, 0.6, 0.7, 0.4, 0.55, 0.65])
    p, effect, best = paired_test(changes, torch.zeros(6))
    assert effect == 1.0 and abs(p - best) < 1e-12 and abs(best - 2 / 2**6) < 1e-9  # two-sided exact
    p, effect, _ = paired_test(-changes, torch.zeros(6))
    assert effect == 1.0 and abs(p - 2 / 2**6) < 1e-9  # either direction
    d = torch.tensor([0.3, -0.1, 0.2, 0.25, -0.05, 0.4, 0.15])
    p, effect, _ = paired_test(d, torch.zeros(7))
    assert abs(p - wilcoxon(d.numpy()).pvalue) < 1e-12 and abs(effect - 5 / 7) < 1e-12
