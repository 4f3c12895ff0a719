"""Simulated fMRI: planted connectivity differs between classes, only where planted; connectivity is Pearson's."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlens.data.synthetic.fmri import Plant, block_means, connectivity, planted_groups, simulate_fmri
from medlens.errors import InputError


@pytest.fixture(scope="module")
def subjects():
    data = simulate_fmri(40, n_regions=60, n_groups=5, n_timepoints=150, seed=3)
    return data, connectivity(data.timeseries)


def test_planted_connectivity_differs_between_classes_only_where_planted(subjects):
    data, conn = subjects
    blocks = block_means(conn, data.groups)
    diff = blocks[data.labels == 1].mean(0) - blocks[data.labels == 0].mean(0)  # (G, G)
    assert float(diff[0, 1]) > 0.1 and float(diff[1, 0]) > 0.1  # coupled in class 1
    assert float(diff[2, 3]) < -0.07  # anti-coupled in class 1
    assert float(diff[4, 4]) > 0.08  # group 4 tighter in class 1
    planted = torch.zeros(5, 5, dtype=torch.bool)
    planted[0, 1] = planted[1, 0] = planted[2, 3] = planted[3, 2] = planted[4, 4] = True
    assert float(diff[~planted].abs().max()) < 0.05
    # regions of a group move together in both classes, unrelated groups do not
    mean = blocks.mean(0)
    assert float(mean.diagonal().min()) > 0.25
    assert float(mean[~torch.eye(5, dtype=torch.bool) & ~planted].abs().max()) < 0.05


def test_classes_are_balanced_and_groups_fixed(subjects):
    data, _ = subjects
    assert int(data.labels.sum()) == 20
    assert torch.equal(data.groups, planted_groups(60, 5, 0))
    assert torch.bincount(data.groups).tolist() == [12] * 5
    other = simulate_fmri(4, n_regions=60, n_groups=5, n_timepoints=20, seed=9)
    assert torch.equal(other.groups, data.groups)  # same planted groups across sets


def test_connectivity_is_pearson_correlation_with_a_zero_diagonal():
    x = torch.randn(3, 7, 40, generator=torch.Generator().manual_seed(0))
    c = connectivity(x)
    for s in range(3):
        ref = np.corrcoef(x[s].numpy())
        np.fill_diagonal(ref, 0)
        np.testing.assert_allclose(c[s].numpy(), ref, atol=1e-5)


def test_block_means_of_a_hand_made_matrix():
    groups = torch.tensor([0, 0, 1, 1, 1])
    conn = torch.zeros(1, 5, 5)
    conn[0, :2, :2] = 0.8
    conn[0, 2:, 2:] = 0.4
    conn[0, :2, 2:] = conn[0, 2:, :2] = -0.2
    conn[0].fill_diagonal_(0)
    torch.testing.assert_close(block_means(conn, groups)[0].float(), torch.tensor([[0.8, -0.2], [-0.2, 0.4]]))


def test_invalid_plants_are_named():
    with pytest.raises(InputError, match="coupling"):
        simulate_fmri(4, n_groups=3, plant=Plant(couplings=((0, 5, 0.5),), loadings=()))
    with pytest.raises(InputError):
        connectivity(torch.zeros(3, 4))
