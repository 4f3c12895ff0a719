"""GroupINN: the grouping layer's constraints, the grouped graphs against their definition, ARI
against scikit-learn, group matching, relevance, baseline, model file, and a small planted run."""

from __future__ import annotations

import pytest
import torch

from medlens.data.synthetic.fmri import connectivity, simulate_fmri
from medlens.errors import InputError
from medlens.models.io import load_model, save_model
from medlens.systems.groupinn import (
    GroupINN, adjusted_rand_index, cohesion, group_relevance, logistic_baseline, match_groups,
    orthogonality_penalty, train_groupinn,
)


def _conn(b=4, r=12, seed=0):
    x = torch.randn(b, r, 30, generator=torch.Generator().manual_seed(seed))
    return connectivity(x)


def test_the_assignment_is_non_negative_with_unit_columns_whatever_its_parameters():
    model = GroupINN(12, 3, hidden=4)
    with torch.no_grad():
        model.assignment_raw.normal_(0, 3, generator=torch.Generator().manual_seed(0))  # many negative entries
    w = model.assignment()
    assert float(w.min()) >= 0
    torch.testing.assert_close(w.norm(dim=0), torch.ones(3))
    # the penalty is the squared Frobenius distance of W^T W from the identity
    assert float(orthogonality_penalty(w)) == pytest.approx(float(((w.T @ w - torch.eye(3)) ** 2).sum()))
    hard = torch.zeros(12, 3)
    hard[torch.arange(12), torch.arange(12) % 3] = 0.5  # disjoint columns with norm 1
    assert float(orthogonality_penalty(hard)) == pytest.approx(0.0, abs=1e-12)


def test_training_enforces_orthogonality_so_each_region_joins_one_group():
    conn = _conn(8, 12)
    labels = torch.tensor([0, 1] * 4)
    model = GroupINN(12, 3, hidden=4)
    before = float(orthogonality_penalty(model.assignment().detach()))
    train_groupinn(model, conn, labels, epochs=150, orthogonality=20.0, lr=0.05)
    w = model.assignment().detach()
    assert float(orthogonality_penalty(w)) < 0.05 * before
    torch.testing.assert_close(w.T @ w, torch.eye(3), atol=0.1, rtol=0)
    share = w.max(1).values / w.sum(1).clamp_min(1e-12)
    assert float(share.median()) > 0.9  # a region's weight sits in one group
    assert float(w.min()) >= 0


def test_grouped_graphs_follow_the_definition_and_regions_may_be_reordered():
    torch.manual_seed(0)
    model = GroupINN(12, 3, hidden=4).eval()
    conn = _conn()
    w = model.assignment().detach()
    grouped = model.grouped(conn).detach()
    for b in range(len(conn)):
        torch.testing.assert_close(grouped[b, 0], w.T @ conn[b].clamp_min(0) @ w)
        torch.testing.assert_close(grouped[b, 1], w.T @ (-conn[b]).clamp_min(0) @ w)
    # relabelling the regions (and the assignment's rows alike) changes nothing
    perm = torch.randperm(12, generator=torch.Generator().manual_seed(1))
    other = GroupINN(12, 3, hidden=4).eval()
    other.load_state_dict(model.state_dict())
    with torch.no_grad():
        other.assignment_raw.copy_(model.assignment_raw[perm])
        torch.testing.assert_close(other(conn[:, perm][:, :, perm]), model(conn))
    with pytest.raises(InputError):
        model(torch.zeros(2, 11, 11))


def test_cohesion_prefers_the_planted_partition():
    from medlens.data.synthetic.fmri import Plant

    data = simulate_fmri(6, n_regions=30, n_groups=3, n_timepoints=100, seed=0,
                         plant=Plant(couplings=((0, 1, 0.5),), loadings=()))
    conn = connectivity(data.timeseries)

    def partition(groups):
        w = torch.nn.functional.one_hot(groups, 3).float()
        return w / w.norm(dim=0, keepdim=True)

    planted = float(cohesion(partition(data.groups), conn))
    shuffled = data.groups[torch.randperm(30, generator=torch.Generator().manual_seed(0))]
    uniform = torch.full((30, 3), 30 ** -0.5)
    assert planted > 2 * float(cohesion(partition(shuffled), conn))
    assert planted > 2 * float(cohesion(uniform, conn))


def test_adjusted_rand_index_matches_scikit_learn():
    from sklearn.metrics import adjusted_rand_score

    gen = torch.Generator().manual_seed(0)
    for _ in range(5):
        a = torch.randint(0, 4, (60,), generator=gen)
        b = torch.where(torch.rand(60, generator=gen) < 0.6, a, torch.randint(0, 5, (60,), generator=gen))
        assert adjusted_rand_index(a, b) == pytest.approx(adjusted_rand_score(a.numpy(), b.numpy()), abs=1e-12)
    a = torch.tensor([0, 0, 1, 1, 2, 2])
    assert adjusted_rand_index(a, (a + 1) % 3) == 1.0  # renaming does not matter
    assert adjusted_rand_index(torch.tensor([0, 0, 1, 1]), torch.tensor([0, 0, 1, 2])) == pytest.approx(4 / 7)


def test_match_groups_undoes_a_renaming():
    planted = torch.arange(20) % 4
    rename = torch.tensor([2, 0, 3, 1])
    learnt = rename[planted]
    perm = match_groups(learnt, planted)
    assert torch.equal(perm[learnt], planted)


def test_group_relevance_is_antisymmetric_in_the_compared_classes_and_shaped_per_branch():
    torch.manual_seed(0)
    model = GroupINN(12, 3, hidden=4).eval()
    conn = _conn()
    r = group_relevance(model, conn, target=1, reference=0)
    assert r.shape == (2, 3, 3)
    torch.testing.assert_close(group_relevance(model, conn, target=0, reference=1), -r)
    assert all(p.grad is None for p in model.parameters())


def test_logistic_baseline_separates_separable_classes():
    gen = torch.Generator().manual_seed(0)
    conn = torch.randn(40, 6, 6, generator=gen) * 0.1
    labels = torch.arange(40) % 2
    conn[labels == 1, 0, 1] += 1.0
    conn[labels == 1, 1, 0] += 1.0
    result = logistic_baseline(conn[:20], labels[:20], conn[20:], labels[20:], folds=3)
    assert result.accuracy == 1.0


def test_a_groupinn_model_file_round_trips(tmp_path):
    model = GroupINN(12, 3, hidden=4, seed=2).eval()
    loaded, _ = load_model(save_model(model, tmp_path / "g.pt"))
    conn = _conn()
    torch.testing.assert_close(loaded(conn), model(conn))
    assert type(loaded).__name__ == "GroupINN"


@pytest.mark.slow
def test_a_small_planted_run_recovers_the_groups_and_classifies():
    """40 subjects, 45 regions in 3 planted groups, 300 epochs: above-chance grouping and accuracy
    (the full setting, benchmarks/groupinn.py, reports the acceptance numbers)."""
    from medlens.data.synthetic.fmri import Plant

    plant = Plant(couplings=((0, 1, 0.5),), loadings=((2, 0.6, 1.0),))
    train = simulate_fmri(40, n_regions=45, n_groups=3, plant=plant, seed=0)
    test = simulate_fmri(60, n_regions=45, n_groups=3, plant=plant, seed=1)
    model = GroupINN(45, 3, hidden=4)
    train_groupinn(model, connectivity(train.timeseries), train.labels, epochs=300, cohesion_weight=1.0)
    with torch.no_grad():
        acc = float((model(connectivity(test.timeseries)).argmax(1) == test.labels).float().mean())
    assert acc > 0.75
    assert adjusted_rand_index(model.groups(), train.groups) > 0.5
