"""Coarse-to-fine occlusion: a naive reference of the pyramid on a linear model, the evaluation
count, a known region, and the note a default run carries."""

import itertools
import math

import torch

import medlens
from medlens.attribution.coarse_to_fine import coarse_to_fine_occlusion
from medlens.core import cost
from medlens.core.targets import to_target


class Gated(torch.nn.Module):
    """Score 0: the sum of the input inside a box, times a weight per voxel (so drops add up)."""

    def __init__(self, spatial, box):
        super().__init__()
        gate = torch.zeros(spatial, dtype=torch.float64)
        gate[tuple(slice(a, b) for a, b in box)] = 1
        self.register_buffer("w", gate * torch.linspace(1, 2, math.prod(spatial), dtype=torch.float64).view(spatial))
        self.calls = 0

    def forward(self, x):
        self.calls += len(x)
        s = (x[:, 0] * self.w).flatten(1).sum(1, keepdim=True)
        return torch.cat([s, -s], 1)


def test_fully_refined_pyramid_equals_the_sum_of_level_densities():
    spatial, box = (8, 8, 8), [(1, 5), (2, 7), (3, 6)]
    model = Gated(spatial, box)
    x = torch.rand(1, 1, *spatial, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.5
    values, info = coarse_to_fine_occlusion(model, x, to_target(0, None, batch=1), evaluations=8 + 64, min_window=2)
    assert info == {"windows": 72, "finest_window": (2, 2, 2), "finest_share": 1.0}
    assert model.calls == 73  # the unoccluded input and every window
    # naive reference: every level evaluated everywhere, drop of a cell = sum of w * x inside it
    contribution = model.w * x[0, 0]
    expected = torch.zeros(spatial, dtype=torch.float64)
    for size in (4, 2):
        for corner in itertools.product(range(0, 8, size), repeat=3):
            cell = tuple(slice(c, c + size) for c in corner)
            expected[cell] += contribution[cell].sum() / size**3
    torch.testing.assert_close(values[0, 0], expected * 8)


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
