"""Prediction basis: nearest training cases in the model's embedding space (Lee et al. 2019)."""

import pytest
import torch

import medlens
from medlens.core.hooks import count_hooks
from medlens.errors import InputError, UnknownNameError
from medlens.selfexplain.basis import build_index, nearest, prediction_basis
from medlens.selfexplain.embedding import embed
from tests.conftest import make_input, make_model


def test_a_training_case_retrieves_itself_first(spatial_dims):
    model = make_model(spatial_dims)
    train = make_input(spatial_dims, batch=12, seed=3)
    labels = torch.arange(12) % 3
    queries = train[[7, 2, 11]]
    basis = prediction_basis(model, queries, train, labels, k=4, saliency=False)
    assert basis.indices[:, 0].tolist() == [7, 2, 11]
    torch.testing.assert_close(basis.similarity[:, 0], torch.ones(3, dtype=torch.float64))
    assert (basis.similarity[:, :-1] >= basis.similarity[:, 1:]).all()
    assert basis.labels.tolist() == labels[basis.indices].tolist()
    assert count_hooks(model) == 0


def test_similarity_is_the_cosine_of_the_centred_penultimate_features():
    model = make_model(2)
    train, queries = make_input(2, batch=10, seed=4), make_input(2, batch=2, seed=5)
    basis = prediction_basis(model, queries, train, torch.zeros(10, dtype=torch.long), k=10, saliency=False)
    with torch.no_grad():
        f_train, f_q = model.embed(train).double(), model.embed(queries).double()
    mean = f_train.mean(0)
    f_train, f_q = f_train - mean, f_q - mean
    naive = torch.stack([torch.nn.functional.cosine_similarity(fq[None], f_train, dim=1) for fq in f_q])
    expected, order = naive.sort(dim=1, descending=True)
    torch.testing.assert_close(basis.similarity, expected)
    assert torch.equal(basis.indices, order)
    # distances in units of the median nearest-neighbour distance among the training cases
    d = torch.cdist(f_train, f_train) + torch.diag(torch.full((10,), float("inf"), dtype=torch.float64))
    typical = d.min(1).values.median()
    expected_rel = (f_q[:, None] - f_train[order]).norm(dim=-1) / typical
    torch.testing.assert_close(basis.relative_distance, expected_rel)
    with torch.no_grad():
        assert torch.equal(basis.query_predictions, model(queries).argmax(1))
        assert torch.equal(basis.predictions, model(train).argmax(1)[basis.indices])


def test_retrieved_cases_carry_their_own_saliency_maps():
    model = make_model(1)
    train, queries = make_input(1, batch=9, seed=6), make_input(1, batch=2, seed=7)
    basis = prediction_basis(model, queries, train, torch.arange(9) % 3, k=3)
    assert basis.saliency.shape == (2, 3, *train.shape[1:])
    for q in range(2):
        for j in range(3):
            case = train[basis.indices[q, j]][None]
            expected = medlens.explain(model, case).values[0]
            torch.testing.assert_close(basis.saliency[q, j], expected)
        torch.testing.assert_close(basis.query_saliency[q], medlens.explain(model, queries[q][None]).values[0])
    assert basis.method == "gradient"


def test_layer_features_are_the_spatial_mean_of_that_layer():
    model = make_model(2)
    x = make_input(2, batch=4)
    feats = embed(model, x, layer="features.block2.act")
    with torch.no_grad():
        b2 = model.features.block2
        expected = b2.act(b2.norm(b2.conv(model.features.block1(x)))).mean(dim=(2, 3))
    torch.testing.assert_close(feats, expected)
    # retrieval in that space also finds the case itself
    basis = prediction_basis(model, x[[1]], x, torch.zeros(4, dtype=torch.long), k=2, layer="features.block2.act",
                             saliency=False)
    assert int(basis.indices[0, 0]) == 1
    assert count_hooks(model) == 0


def test_a_prebuilt_index_gives_the_same_answer():
    model = make_model(3)
    train, labels = make_input(3, batch=6, seed=8), torch.arange(6) % 3
    index = build_index(model, train, labels)
    a = prediction_basis(model, train[:2], train, labels, k=3, saliency=False)
    b = prediction_basis(model, train[:2], train, index=index, k=3, saliency=False)
    assert torch.equal(a.indices, b.indices) and torch.equal(a.similarity, b.similarity)
    assert a.label_agreement().shape == (2,)


def test_bad_requests_name_the_problem():
    model = make_model(2)
    train, labels = make_input(2, batch=5), torch.zeros(5, dtype=torch.long)
    with pytest.raises(InputError, match="k must lie in 1..5"):
        prediction_basis(model, train[:1], train, labels, k=6, saliency=False)
    with pytest.raises(InputError, match="labels"):
        build_index(model, train, labels[:3])
    with pytest.raises(UnknownNameError, match="no layer named"):
        prediction_basis(model, train[:1], train, labels, layer="nope")
    with pytest.raises(InputError, match="embed"):
        embed(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(576, 2)).double(), train)
    index = build_index(model, train, labels)
    with pytest.raises(InputError, match="dimensions"):
        nearest(index, torch.zeros(1, 3), 1)


def test_similarity_discriminates_when_features_share_a_large_common_part():
    """After a ReLU every feature is non-negative: plain cosine scores every pair near 1 (the
    case report showed 1.00 for five different cases). Centred, unrelated cases fall to 0 or below."""
    gen = torch.Generator().manual_seed(0)
    common = 5.0 * torch.ones(8, dtype=torch.float64)
    train = common + 0.3 * torch.randn(200, 8, generator=gen, dtype=torch.float64)
    index = build_index(_Identity(), train.reshape(200, 1, 8).float(), torch.zeros(200, dtype=torch.long))
    plain = torch.nn.functional.normalize(train, dim=1) @ torch.nn.functional.normalize(train, dim=1).T
    assert float(plain.min()) > 0.95  # the bug: nothing scores low
    sim, _ = nearest(index, train[:20], k=200)
    assert float(sim[:, -1].max()) < -0.5 and float(sim[:, 0].min()) > 0.999


class _Identity(torch.nn.Module):
    """Features = the input itself (its ``embed``), two classes."""

    def embed(self, x):
        return x.flatten(1).double()

    def forward(self, x):
        return torch.stack([x.flatten(1).sum(1), -x.flatten(1).sum(1)], 1)
