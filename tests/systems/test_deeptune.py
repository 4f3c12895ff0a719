"""DeepTune: ridge against its closed form, readout folding, consensus pooling, best-shift NCC, a planted neuron."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlens.errors import InputError
from medlens.models import CNN
from medlens.systems.deeptune import (
    Consensus, Readout, best_shift_ncc, feature_trunk, features_of, fit_deeptune, fit_ridge, pearson,
)


def _data(n=120, d=30, k=3, noise=0.1, seed=0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen, dtype=torch.float64) * torch.linspace(0.5, 2, d, dtype=torch.float64)
    w = torch.randn(d, k, generator=gen, dtype=torch.float64)
    y = x @ w + noise * torch.randn(n, k, generator=gen, dtype=torch.float64)
    return x, y


def test_ridge_equals_the_primal_closed_form():
    x, y = _data()
    lam = 7.0
    fit = fit_ridge(x, y, lambdas=[lam])
    z = ((x - x.mean(0)) / x.std(0)).numpy()
    yc = (y - y.mean(0)).numpy()
    w = np.linalg.solve(z.T @ z + lam * np.eye(z.shape[1]), z.T @ yc)
    np.testing.assert_allclose(fit.weights.numpy(), w, atol=1e-8)
    np.testing.assert_allclose(fit.predict(x).numpy(), z @ w + y.mean(0).numpy(), atol=1e-8)


def test_ridge_picks_a_small_penalty_for_clean_signal_and_a_large_one_for_noise():
    x, y = _data(noise=0.01)
    noise = torch.randn(len(x), 2, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    fit = fit_ridge(x, torch.cat([y, noise], 1), lambdas=[1e-3, 1e-1, 1e1, 1e3, 1e5])
    assert (fit.lambdas[:3] <= 1e-1).all()
    assert (fit.lambdas[3:] >= 1e3).all()
    assert (fit.val_correlation[:3] > 0.99).all()
    with pytest.raises(InputError):
        fit_ridge(x, y[:10])


def test_readout_folds_the_standardisation_and_consensus_pools_standardised_members():
    torch.manual_seed(0)
    members = [CNN(2, 1, 2, widths=(4, 6), input_shape=(1, 12, 12)).double().eval() for _ in range(2)]
    images = torch.rand(60, 1, 12, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    trunks = [feature_trunk(m, 1) for m in members]
    feats = [features_of(t, images) for t in trunks]
    y = feats[0][:, :5] @ torch.linspace(-1, 1, 5, dtype=torch.float64)[:, None]
    fits = [fit_ridge(f, y, lambdas=[1.0]) for f in feats]
    readouts = [Readout(t, f) for t, f in zip(trunks, fits)]
    with torch.no_grad():
        for r, f, fit in zip(readouts, feats, fits):
            torch.testing.assert_close(r(images), fit.predict(f))
        scales = torch.stack([fit.predict(f).std(0) for f, fit in zip(feats, fits)])
        pooled = Consensus(readouts, scales)(images)
        expected = (readouts[0](images) / scales[0] + readouts[1](images) / scales[1]) / 2
        torch.testing.assert_close(pooled, expected)
    # the trunk is a frozen copy: the member is untouched
    assert all(not p.requires_grad for p in trunks[0].parameters())
    assert all(p.requires_grad for p in members[0].parameters())


def test_a_neuron_that_is_linear_in_the_features_is_predicted_to_the_noise_ceiling():
    torch.manual_seed(0)
    members = [CNN(2, 1, 2, widths=(3, 4), input_shape=(1, 8, 8)).double().eval() for _ in range(2)]
    images = torch.rand(400, 1, 8, 8, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    f0 = features_of(feature_trunk(members[0], 1), images)
    gen = torch.Generator().manual_seed(3)
    clean = f0 @ torch.randn(f0.shape[1], 1, generator=gen, dtype=torch.float64)
    recorded = clean + 0.3 * clean.std() * torch.randn(clean.shape, generator=gen, dtype=torch.float64)
    fit = fit_deeptune(members, images, recorded, blocks=1, lambdas=[1e-2, 1, 1e2, 1e4])
    ceiling = 1 / (1 + 0.3**2) ** 0.5
    assert fit.member_correlation.shape == (2, 1) and len(fit.test_index) == 80
    assert f0.shape[1] == 48  # 3 channels x 4 x 4 after the first block's pooling
    assert float(fit.member_correlation[0, 0]) > ceiling - 0.03  # its own features: at the ceiling
    assert float(fit.member_correlation[0, 0]) > float(fit.member_correlation[1, 0])
    assert fit.consensus_model()(images[:3]).shape == (3, 1)


def test_pearson_matches_numpy():
    a, b = torch.randn(50, 3, dtype=torch.float64), torch.randn(50, 3, dtype=torch.float64)
    for k in range(3):
        assert float(pearson(a, b)[k]) == pytest.approx(np.corrcoef(a[:, k], b[:, k])[0, 1], abs=1e-12)
    assert float(pearson(torch.ones(5, 1), torch.randn(5, 1))[0]) == 0.0


def test_best_shift_ncc_finds_a_shifted_and_inverted_template():
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    env = torch.exp(-((yy - 12) ** 2 + (xx - 15) ** 2) / 18)
    template = env * torch.cos(2 * torch.pi * xx / 6)
    shifted = torch.roll(template, shifts=(1, -2), dims=(0, 1)) + 0.5
    assert best_shift_ncc(shifted, template, max_shift=3) == pytest.approx(1.0, abs=1e-9)
    assert best_shift_ncc(torch.roll(template, shifts=(0, 0), dims=(0, 1)), template, max_shift=0) == pytest.approx(1.0)
    assert best_shift_ncc(shifted, template, max_shift=0) < 0.0  # 2 px along a 6 px carrier: out of phase
    assert best_shift_ncc(1 - template, template, max_shift=0) == pytest.approx(-1.0)  # inverted contrast
    assert best_shift_ncc(1 - shifted, template, max_shift=3, polarity_free=True) == pytest.approx(1.0, abs=1e-9)
    # against a naive computation at zero shift: the cosine of the mean-centred window contents
    noise = torch.rand(28, 28, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    mask = template.abs() >= 0.05 * template.abs().max()
    rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
    win = (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
    ref = np.corrcoef(noise[win].flatten().numpy(), template[win].flatten().numpy())[0, 1]
    assert best_shift_ncc(noise, template, max_shift=0) == pytest.approx(ref, abs=1e-9)
    with pytest.raises(InputError):
        best_shift_ncc(noise[:10], template)
