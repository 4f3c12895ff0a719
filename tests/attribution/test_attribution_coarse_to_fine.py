"""Coarse-to-fine occlusion: a naive reference of the pyramid on a linear model, the evaluation
count, a known region, and the note a default run carries."""

import itertools
import math
import threading

import torch

import medlens
from medlens.attribution.coarse_to_fine import coarse_to_fine_occlusion
from medlens.attribution.occlusion import COARSE_TO_FINE_BUDGET_SCALE
from medlens.core import cost
from medlens.core.targets import to_target


class Gated(torch.nn.Module):
    """Score 0: the sum of the input inside a box, times a weight per voxel (so drops add up)."""

    def __init__(self, spatial, box):
        super().__init__()
        gate = torch.zeros(spatial, dtype=torch.float64)
        gate[tuple(slice(a, b) for a, b in box)] = 1
        self.register_buffer("w", gate * torch.linspace(1, 2, math.prod(spatial), dtype=torch.float64).view(spatial))
        self.calls, self._lock = 0, threading.Lock()  # occlusion's chunks run side by side

    def forward(self, x):
        with self._lock:
            self.calls += len(x)
        s = (x[:, 0] * self.w).flatten(1).sum(1, keepdim=True)
        return torch.cat([s, -s], 1)


def test_fully_refined_tree_equals_the_naive_grid_of_finest_windows():
    spatial, box = (8, 8, 8), [(1, 5), (2, 7), (3, 6)]
    model = Gated(spatial, box)
    x = torch.rand(1, 1, *spatial, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.5
    values, info = coarse_to_fine_occlusion(model, x, to_target(0, None, batch=1), evaluations=8 + 64, min_window=2)
    assert (info["windows"], info["finest_window"], info["finest_share"]) == (72, (2, 2, 2), 1.0)
    assert model.calls == 73  # the unoccluded input and every window
    # naive reference: every 2^3 window occluded on its own, one model call each
    expected = torch.zeros(spatial, dtype=torch.float64)
    original = model(x)[0, 0]
    for corner in itertools.product(range(0, 8, 2), repeat=3):
        cell = tuple(slice(c, c + 2) for c in corner)
        occluded = x.clone()
        occluded[(0, 0, *cell)] = 0
        expected[cell] = original - model(occluded)[0, 0]
    torch.testing.assert_close(values[0, 0], expected)


def test_a_partly_refined_tree_credits_each_element_with_its_finest_window():
    spatial, box = (8, 8, 8), [(0, 3), (0, 3), (0, 3)]
    model = Gated(spatial, box)
    x = torch.rand(1, 1, *spatial, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + 0.5
    values, info = coarse_to_fine_occlusion(model, x, to_target(0, None, batch=1), evaluations=8 + 8 + 3, min_window=2)
    assert info["windows"] == 16  # 8 octants, then the one octant with a drop; 3 left cannot split another
    (leaves,) = info["cells"]
    assert len(leaves) == 15 and sum(math.prod(b - a for a, b in cell) for cell in leaves) == 8**3
    contribution = model.w * x[0, 0]
    for cell, drop in leaves.items():  # each final window's drop, computed point by point
        index = tuple(slice(a, b) for a, b in cell)
        torch.testing.assert_close(torch.as_tensor(drop, dtype=torch.float64), contribution[index].sum())
        volume = math.prod(b - a for a, b in cell)
        torch.testing.assert_close(values[(0, 0, *index)], torch.full_like(values[(0, 0, *index)], drop / volume * 8))


def test_budgeted_pyramid_spends_its_evaluations_where_the_drop_is():
    spatial, box = (32, 32, 32), [(1, 9), (2, 10), (3, 11)]  # inside one octant
    model = Gated(spatial, box)
    x = torch.ones(1, 1, *spatial, dtype=torch.float64)
    values, info = coarse_to_fine_occlusion(model, x, to_target(0, None, batch=1), evaluations=40, min_window=2)
    assert info["windows"] <= 40 and model.calls == info["windows"] + 1
    assert 0 < info["finest_share"] < 1
    inside = torch.zeros(spatial, dtype=torch.bool)
    inside[tuple(slice(a, b) for a, b in box)] = True
    v = values[0, 0]
    assert bool((v >= 0).all())  # drops of a model increasing in every input
    octant = torch.zeros(spatial, dtype=torch.bool)
    octant[:16, :16, :16] = True
    assert float(v[~octant].abs().max()) == 0.0  # the other octants change nothing and are never refined
    top = v.flatten().topk(32).indices  # the top 0.1%: the deepest refined cells
    assert float(inside.flatten()[top].double().mean()) == 1.0


def test_default_run_on_a_volume_says_how_much_was_resolved(monkeypatch):
    spatial, box = (16, 16, 16), [(3, 9), (4, 10), (5, 11)]
    model = Gated(spatial, box).float()
    monkeypatch.setattr(cost, "FLOP_BUDGET", 1.0)  # any model is then too costly for the full grid
    result = medlens.explain(model, torch.ones(1, 1, *spatial), target=0, method="occlusion")
    assert result.params["strategy"] == "coarse_to_fine"
    note = result.extras["note"]
    assert "coarse-to-fine occlusion with 8 window evaluations" in note and "% of the input was resolved" in note


class GatedCNN(torch.nn.Module):
    """A random-weight 3D CNN that sees only a box of its input (everything else is multiplied by 0)."""

    def __init__(self, spatial, box):
        super().__init__()
        torch.manual_seed(0)
        gate = torch.zeros(1, 1, *spatial)
        gate[(0, 0, *(slice(a, b) for a, b in box))] = 1
        self.register_buffer("gate", gate)
        self.net = torch.nn.Sequential(
            torch.nn.Conv3d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(8, 8, 3, stride=2, padding=1),
            torch.nn.ReLU(), torch.nn.AdaptiveAvgPool3d(1), torch.nn.Flatten(), torch.nn.Linear(8, 2),
        )

    def forward(self, x):
        return self.net(x * self.gate)


def test_default_occlusion_on_a_gated_3d_cnn_puts_its_top_locations_in_the_region(monkeypatch):
    spatial, box = (32, 32, 32), [(11, 21)] * 3  # straddles the centre: every octant sees it
    model = GatedCNN(spatial, box).eval()
    x = torch.randn(1, 1, *spatial, generator=torch.Generator().manual_seed(1))
    # a budget of 100 passes, too few for the eighth-size grid (3375 windows): about 200 coarse-to-fine
    # windows (the old default, a pyramid of 99 windows summed over its levels, put 0.66 inside)
    # coarse-to-fine spends 200 passes (COARSE_TO_FINE_BUDGET_SCALE times the budget)
    monkeypatch.setattr(cost, "FLOP_BUDGET", 200 / COARSE_TO_FINE_BUDGET_SCALE * cost.forward_cost(model, x))
    inside = torch.zeros(spatial, dtype=torch.bool)
    inside[tuple(slice(a, b) for a, b in box)] = True
    plain = medlens.explain(model, x, target=1, method="occlusion", incremental=False)
    assert plain.params["strategy"] == "coarse_to_fine" and 190 <= plain.params["windows"] <= 199
    # with incremental inference a small window costs a fraction of a pass (counted): more windows
    result = medlens.explain(model, x, target=1, method="occlusion")
    assert result.params["strategy"] == "coarse_to_fine" and result.params["windows"] > 2 * plain.params["windows"]
    assert "through incremental inference" in result.extras["note"]
    # at 2^3 windows the box's odd edges (11, 21) cut windows in half: those then carry their
    # drop to the voxel just outside, so the finer map puts a little less of its top 1% inside
    for r, least in ((plain, 0.8), (result, 0.7)):
        v = r.values[0, 0]
        assert float(v[~inside].abs().max()) <= float(v[inside].abs().max())
        top = (v - v.median()).abs().flatten().topk(int(0.01 * v.numel())).indices  # the top 1%
        assert float(inside.flatten()[top].double().mean()) >= least


def test_incremental_windows_give_the_same_map():
    spatial, box = (24, 24, 24), [(5, 15), (9, 19), (3, 13)]
    model = GatedCNN(spatial, box).double().eval()
    x = torch.randn(2, 1, *spatial, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    target = to_target([1, 0], None, batch=2)
    fast, info = coarse_to_fine_occlusion(model, x, target, evaluations=80, min_window=3, baseline="mean")
    full, plain_info = coarse_to_fine_occlusion(model, x, target, evaluations=80, min_window=3, baseline="mean",
                                                incremental=False)
    assert info["incremental_windows"] == info["windows"] == plain_info["windows"] == 80
    assert plain_info["incremental_windows"] == 0
    torch.testing.assert_close(fast, full, rtol=1e-9, atol=1e-12)
