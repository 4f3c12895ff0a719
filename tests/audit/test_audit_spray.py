"""SpRAy's clustering: planted groups recovered, eigengap, ARI against an oracle, sparse = dense."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from medlens.audit.spray import DENSE_LIMIT, adjusted_rand_index, kmeans, spectral_clusters
from medlens.audit.summary import summarise_maps


def planted_maps(n_per_group: int, centres, size: int = 32, seed: int = 0, noise: float = 0.3):
    """Maps with a Gaussian hotspot at one of ``centres`` (jittered) plus noise; labels = group."""
    gen = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij")
    maps, labels = [], []
    for g, (cy, cx) in enumerate(centres):
        for _ in range(n_per_group):
            jy, jx = (torch.rand(2, generator=gen, dtype=torch.float64) - 0.5) * 4
            blob = torch.exp(-((yy - cy - jy) ** 2 + (xx - cx - jx) ** 2) / (2 * 3.0**2))
            maps.append(blob + noise * torch.rand(size, size, generator=gen, dtype=torch.float64))
            labels.append(g)
    return torch.stack(maps), torch.tensor(labels)


def test_ari_known_values_and_sklearn_oracle():
    a = torch.tensor([0, 0, 1, 1, 2, 2])
    assert adjusted_rand_index(a, a) == pytest.approx(1.0)
    assert adjusted_rand_index(a, torch.tensor([5, 5, 3, 3, 9, 9])) == pytest.approx(1.0)  # renaming
    sklearn = pytest.importorskip("sklearn.metrics")
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):
        x = torch.randint(0, 4, (60,), generator=gen)
        y = torch.randint(0, 3, (60,), generator=gen)
        assert adjusted_rand_index(x, y) == pytest.approx(sklearn.adjusted_rand_score(x.numpy(), y.numpy()), abs=1e-12)


def test_kmeans_separates_far_apart_points():
    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.normal(0, 0.1, (20, 2)), rng.normal(5, 0.1, (20, 2))])
    labels = kmeans(pts, 2, seed=0)
    assert adjusted_rand_index(torch.from_numpy(labels), torch.tensor([0] * 20 + [1] * 20)) == 1.0


@pytest.mark.parametrize("n_groups", [2, 3, 4])
def test_planted_groups_are_recovered_and_counted_by_the_eigengap(n_groups):
    centres = [(6, 6), (6, 25), (25, 6), (25, 25)][:n_groups]
    maps, planted = planted_maps(30, centres)
    summaries = summarise_maps(maps, (8, 8))
    result = spectral_clusters(summaries, seed=0)
    assert result.n_clusters == n_groups
    assert adjusted_rand_index(result.labels, planted) > 0.95
    lam = result.eigenvalues
    assert lam[0] == pytest.approx(0.0, abs=1e-8)  # the normalised Laplacian's smallest eigenvalue
    assert result.eigengap == pytest.approx(float(lam[n_groups] - lam[n_groups - 1]))
    assert result.embedding.shape == (len(maps), 2)
    sizes = torch.bincount(result.labels)
    assert (sizes[:-1] >= sizes[1:]).all()  # clusters numbered by decreasing size


def test_unequal_groups_and_a_small_outlier_group():
    maps_a, _ = planted_maps(60, [(16, 16)], seed=1)
    maps_b, _ = planted_maps(8, [(2, 2)], seed=2)  # a small group in the corner: a "Clever Hans" cluster
    summaries = summarise_maps(torch.cat([maps_a, maps_b]), (8, 8))
    result = spectral_clusters(summaries, seed=0)
    # The small corner group forms a cluster of its own, with no member of the large group; the
    # large group (a continuum of jittered hotspots) may be split further, as SpRAy may do.
    corner = result.labels[60:]
    assert (corner == corner[0]).all()
    assert not (result.labels[:60] == corner[0]).any()


def test_sparse_eigensolver_agrees_with_dense(monkeypatch):
    import medlens.audit.spray as spray

    centres = [(6, 6), (6, 25), (25, 16)]
    maps, planted = planted_maps(DENSE_LIMIT // 3 + 40, centres, seed=4)  # above the dense limit
    summaries = summarise_maps(maps, (8, 8))
    assert len(maps) > DENSE_LIMIT
    sparse = spectral_clusters(summaries, seed=0)
    assert sparse.n_clusters == 3
    assert adjusted_rand_index(sparse.labels, planted) > 0.95
    monkeypatch.setattr(spray, "DENSE_LIMIT", 10**9)  # the same graph through the dense solver
    dense = spectral_clusters(summaries, seed=0)
    assert torch.allclose(dense.eigenvalues, sparse.eigenvalues, atol=1e-7)
    assert adjusted_rand_index(dense.labels, sparse.labels) == 1.0


def test_forced_number_of_clusters_and_tiny_inputs():
    maps, _ = planted_maps(10, [(6, 6), (25, 25)])
    summaries = summarise_maps(maps, (8, 8))
    assert spectral_clusters(summaries, n_clusters=3).n_clusters == 3
    assert spectral_clusters(summaries[:2]).n_clusters == 1
    with pytest.raises(Exception):
        spectral_clusters(torch.full((5, 4), math.nan))
