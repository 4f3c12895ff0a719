"""Map summaries, the border band, evidence grids and misplaced relevance: known answers."""

from __future__ import annotations

import math

import pytest
import torch

from medlens.audit.summary import border_band, evidence_grid, misplaced_relevance, summarise_maps, summary_grid


def test_summary_grid_is_about_64_cells_per_rank():
    assert summary_grid((140,)) == (64,)
    assert summary_grid((64, 64)) == (8, 8)
    assert summary_grid((32, 32, 32)) == (4, 4, 4)
    assert summary_grid((5, 40)) == (5, 8)  # never more cells than positions


def test_uniform_and_point_maps_have_closed_form_summaries():
    uniform = summarise_maps(torch.ones(1, 16, 16), (4, 4))
    assert torch.allclose(uniform, torch.full((1, 16), 0.25))  # sqrt(1/16)
    point = torch.zeros(1, 16, 16)
    point[0, 13, 2] = -5.0  # magnitude counts, in cell (3, 0)
    s = summarise_maps(point, (4, 4)).reshape(4, 4)
    assert s[3, 0] == pytest.approx(1.0) and s.sum() == pytest.approx(1.0)
    zero = summarise_maps(torch.zeros(2, 8), (4,))
    assert torch.allclose(zero, torch.full((2, 4), 0.5))
    assert torch.allclose(summarise_maps(torch.rand(3, 6, 6, 6), (2, 2, 2)).norm(dim=1), torch.ones(3))


def test_border_band_width():
    band = border_band((16, 16))  # 2 positions on each side
    assert band.sum() == 16 * 16 - 12 * 12
    assert band[0].all() and band[:, -1].all() and not band[2:14, 2:14].any()
    assert border_band((64,)).sum() == 16


def test_misplaced_relevance_known_answers():
    sal = torch.zeros(3, 16, 16)
    sal[0, 8, 8] = 1.0  # on the lesion
    sal[1, 0, 0] = 1.0  # in the corner, far from the lesion
    sal[2, 8, 8] = 1.0
    sal[2, 0, 15] = 3.0  # 3/4 off the lesion
    masks = torch.zeros(3, 16, 16, dtype=torch.bool)
    masks[:, 7:10, 7:10] = True
    assert torch.allclose(misplaced_relevance(sal, masks), torch.tensor([0.0, 1.0, 0.75], dtype=torch.float64))
    # without masks: the share in the border band
    assert torch.allclose(misplaced_relevance(sal), torch.tensor([0.0, 1.0, 0.75], dtype=torch.float64))
    assert math.isnan(float(misplaced_relevance(torch.zeros(1, 8, 8))[0]))


def test_evidence_grid_uses_masks_where_present_else_the_interior():
    masks = torch.zeros(2, 16, 16, dtype=torch.bool)
    masks[0, 8:10, 8:10] = True  # case 1 has no mask
    grid = evidence_grid(masks, (16, 16), (4, 4), 2).reshape(2, 4, 4)
    assert grid[0, 2, 2] == 1 and grid[0, 0, 0] == 0 and grid[0].sum() < 16
    interior = torch.zeros(4, 4)
    interior[1:3, 1:3] = 1
    assert torch.equal(grid[1], interior)
    assert torch.equal(evidence_grid(None, (16, 16), (4, 4), 2).reshape(2, 4, 4)[0], interior)
