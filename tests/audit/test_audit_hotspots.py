"""Hotspot groups: the members a cluster's region misses, found by where their own maps point.

Known answers on synthetic distributions and evidence grids, then through
:func:`medlens.audit.strategies.find_strategies` with a known-answer removal (the same one as
``test_audit_strategies.py``): tagged cases hidden in a strategy whose mean map points elsewhere
are flagged through their hotspot group, and nobody else.
"""

from __future__ import annotations

import math

import torch

from medlens.audit.hotspots import hotspot_region, hotspots, missed_groups
from medlens.audit.strategies import FlagRule, find_strategies
from medlens.report.audit import flagged_sentences
from tests.audit.test_audit_strategies import GRID, SETTINGS, _case, corner_removal


def test_the_hotspot_is_the_largest_excess_off_the_case_s_own_evidence():
    g = 16
    dist = torch.full((3, g), 1.0 / g, dtype=torch.float64)
    dist[0, 5] += 0.3
    dist[0, 9] += 0.2  # case 0: peak at 5, second at 9
    dist[0] /= dist[0].sum()
    dist[1] = dist[0]
    evidence = torch.zeros(3, g)
    evidence[1, 5] = 1  # case 1: its peak is its own evidence, so its hotspot is the next one
    # case 2: uniform, nothing concentrated off the evidence
    assert hotspots(dist, evidence).tolist() == [5, 9, -1]


def test_missed_members_are_grouped_by_hotspot_across_clusters():
    spots = torch.tensor([0, 0, 7, 3, 0, 3, 3, -1, 0, 0])
    regions = [
        (torch.tensor([0, 1, 2, 3]), (7,)),  # cluster A, region at 7: 0, 1 missed at 0; 3 missed at 3
        (torch.tensor([4, 5, 6, 7]), (3, 4)),  # cluster B, region at 3-4: 4 missed at 0; 7 has none
        (torch.tensor([8, 9]), ()),  # no region (no candidate): never regrouped
    ]
    assert missed_groups(spots, regions, min_size=2) == [(0, [0, 1, 4])]
    assert missed_groups(spots, regions, min_size=1) == [(0, [0, 1, 4]), (3, [3])]
    assert missed_groups(spots, regions, min_size=4) == []


def test_hotspot_region_is_the_neighbourhood_off_the_evidence():
    grid = (4, 4)
    off = torch.ones(16)
    assert hotspot_region(0, off, grid) == (0, 1, 4, 5)  # a corner has three neighbours
    assert hotspot_region(5, off, grid) == (0, 1, 2, 4, 5, 6, 8, 9, 10)
    off[[1, 6, 5]] = 0  # evidence cells are kept, except the hotspot itself
    assert hotspot_region(5, off, grid) == (0, 2, 4, 5, 8, 9, 10)
    # a 1D signal and a 3D volume
    assert hotspot_region(3, torch.ones(8), (8,)) == (2, 3, 4)
    assert len(hotspot_region(13, torch.ones(27), (3, 3, 3))) == 27


def _hidden_tag_cohort(seed: int = 0):
    """The "lesion" class: lesion strategies, a large strategy on the top-right corner that the
    model ignores, and 15 cases on the top-left tag, too few to move the class's mean map there
    (cell 9 of the tag's neighbourhood is interior: possible evidence of the tagged cases)."""
    gen = torch.Generator().manual_seed(seed)
    results, tagged = [], set()
    for i in range(150):
        if i < 60:
            results.append(_case(i, 1, 1, (1.5, 29.5), None, gen))  # top-right corner (cell 7), right
        elif i < 75:
            results.append(_case(i, 1, 0, (1.5, 1.5), None, gen))  # top-left tag (cell 0)
            tagged.add(i)
        elif i < 120:
            c = tuple(int(v) for v in torch.randint(10, 22, (2,), generator=gen))
            results.append(_case(i, 1, 1, c, c, gen))
        else:
            c = tuple(int(v) for v in torch.randint(10, 22, (2,), generator=gen))
            results.append(_case(i, 0, 0, c, None, gen))
    return results, tagged


def test_tagged_cases_hidden_in_a_strategy_pointing_elsewhere_are_flagged_through_their_hotspot():
    results, tagged = _hidden_tag_cohort()
    removal = corner_removal(tagged, results)
    strategies = find_strategies(results, SETTINGS, GRID, n_clusters=1, removal=removal)
    (lesion,) = [cs for cs in strategies.classes if cs.predicted_class == 1]
    (cluster,) = lesion.clusters
    assert 7 in cluster.region and 0 not in cluster.region and not cluster.flagged  # v2 stopped here
    (group,) = [g for g in lesion.hotspots if g.flagged]
    assert group.hotspot == 0 and group.region == (0, 1, 8) and group.verdict == "flagged"
    assert {results[i].index for i in group.members} == tagged and "summary cell 0" in group.reason
    assert {results[i].index for i in strategies.flagged_cases()} == tagged
    assert strategies.flagged() == [group]
    rows = strategies.assignments(results)
    assert {int(r[0]) for r in rows if r[3] == 1} == tagged and {r[2] for r in rows if r[1] == 1} == {0}
    sentences = flagged_sentences(strategies, ("no lesion", "lesion"))
    assert any(s.startswith("Candidate shortcut in the predictions of 'lesion'") and "summary cell 0" in s
               and f"For {len(tagged)} of these cases" in s for s in sentences)
    assert not any(s.startswith("No candidate shortcut") for s in sentences)


def test_a_hotspot_group_of_a_model_that_ignores_the_tag_is_not_flagged():
    results, tagged = _hidden_tag_cohort()
    strategies = find_strategies(results, SETTINGS, GRID, n_clusters=1, removal=corner_removal(tagged, results, 0.0))
    assert strategies.flagged() == [] and strategies.flagged_cases() == []
    group = next(g for cs in strategies.classes for g in cs.hotspots if g.hotspot == 0)
    assert group.verdict == "not flagged" and group.n_tested == len(tagged)


def test_a_group_too_small_to_reach_the_level_is_undecided_outside_the_family():
    results, tagged = _hidden_tag_cohort()
    few = set(sorted(tagged)[:6])  # 6 cases: 2 / 2**6 = 0.031 at best, above 0.01 even alone
    kept = [r for r in results if r.index in few or r.index not in tagged]
    strategies = find_strategies(kept, SETTINGS, GRID, n_clusters=1, removal=corner_removal(few, kept))
    group = next(g for cs in strategies.classes for g in cs.hotspots if g.hotspot == 0)
    assert group.verdict == "undecided" and "too few" in group.reason and math.isnan(group.p_value)
    assert strategies.flagged() == []


def test_a_region_that_matters_less_than_elsewhere_is_not_flagged():
    """Removing the region moves the tagged cases by 0 while removals elsewhere move them by 0.3:
    a consistent, large difference, but the place matters less than any other, not more."""
    results, tagged = _hidden_tag_cohort()
    draws = FlagRule().n_draws

    def removal(cells, positions):
        rows = []
        for p in positions:
            idx = results[p].index
            jitter = [0.01 * ((idx * 7 + j * 3) % 5 - 2) for j in range(draws + 1)]
            far = 0.3 if (idx in tagged and 0 in cells) else 0.0
            rows.append([jitter[0], *[far + v for v in jitter[1:]]])
        return torch.tensor(rows, dtype=torch.float64)

    strategies = find_strategies(results, SETTINGS, GRID, n_clusters=1, removal=removal)
    group = next(g for cs in strategies.classes for g in cs.hotspots if g.hotspot == 0)
    assert group.p_value < FlagRule().alpha and group.effect == 1.0 and abs(group.change - group.null_change) > 0.25
    assert group.verdict == "not flagged" and strategies.flagged() == []
