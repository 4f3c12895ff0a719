"""SciNet: the KL term against torch.distributions, latent analysis on known latents, traversal,
model file round trip, and a short training run that switches a surplus neuron off."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medlens.data.synthetic.oscillators import simulate_oscillators
from medlens.errors import InputError
from medlens.models.io import load_model, save_model
from medlens.systems.scinet import SciNet, analyse_latents, kl_per_neuron, latent_traversal, train_scinet


def test_kl_per_neuron_equals_the_gaussian_kl():
    gen = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(6, 3, generator=gen, dtype=torch.float64), torch.randn(6, 3, generator=gen, dtype=torch.float64)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.testing.assert_close(kl_per_neuron(mu, logvar), torch.distributions.kl_divergence(q, p))
    assert float(kl_per_neuron(torch.zeros(1, 1), torch.zeros(1, 1))) == 0.0


class KnownLatents(nn.Module):
    """Encodes observation columns straight into latents: neuron 0 = 2 * column 1, neuron 1 =
    -column 0 ** 3 (monotone, not linear), neuron 2 = the prior (mu 0, variance 1)."""

    latent = 3

    def encode(self, obs):
        mu = torch.stack([2 * obs[:, 1], -obs[:, 0] ** 3, torch.zeros(len(obs))], 1)
        logvar = torch.stack([torch.full((len(obs),), -4.0), torch.full((len(obs),), -4.0), torch.zeros(len(obs))], 1)
        return mu, logvar

    def decode(self, z, q):
        return z[:, :1] + q


def test_analyse_latents_on_known_latents():
    gen = torch.Generator().manual_seed(1)
    params = torch.rand(500, 2, generator=gen, dtype=torch.float64)
    obs = params.float()
    q = torch.rand(500, 1, generator=gen)
    answers = 2 * obs[:, 1:2] + q + 0.1
    a = analyse_latents(KnownLatents(), obs, q, answers, params, parameter_names=("p0", "p1"))
    assert a.best_neuron.tolist() == [1, 0]
    assert float(a.correlation[1, 0]) == pytest.approx(1.0, abs=1e-6)
    assert 0.9 < float(a.correlation[0, 1]) < 0.99  # monotone but curved
    assert float(a.kl[2]) == pytest.approx(0.0, abs=1e-9) and a.active.tolist() == [True, True, False]
    assert a.answer_rmse == pytest.approx(0.1, abs=1e-5)


def test_traversal_moves_only_the_swept_neuron():
    torch.manual_seed(0)
    model = SciNet(n_obs=10, latent=3, hidden=(16,)).eval()
    obs = torch.randn(10)
    values = torch.linspace(-2, 2, 4)
    grid = torch.linspace(0, 1, 7)[:, None]
    out = latent_traversal(model, obs, 1, values, grid)
    assert out.shape == (4, 7, 1)
    with torch.no_grad():
        mu, _ = model.encode(obs[None])
        for i, v in enumerate(values):
            z = mu.clone()
            z[0, 1] = v
            torch.testing.assert_close(out[i], model.decode(z.expand(7, -1), grid))
    with pytest.raises(InputError):
        latent_traversal(model, obs, 3, values, grid)


def test_a_scinet_model_file_round_trips(tmp_path):
    torch.manual_seed(0)
    model = SciNet(n_obs=12, latent=2, hidden=(8, 4)).eval()
    path = save_model(model, tmp_path / "scinet.pt", {"data": "oscillators"})
    loaded, meta = load_model(path)
    obs, q = torch.randn(3, 12), torch.rand(3, 1)
    torch.testing.assert_close(loaded(obs, q), model(obs, q))
    assert type(loaded).__name__ == "SciNet" and meta["data"] == "oscillators"


def test_short_training_holds_the_spring_constant_in_one_neuron():
    """3000 oscillators, 25 epochs (seconds): the decoder already needs kappa, the strongest
    parameter, and one neuron holds it. (The full run, benchmarks/scinet.py, also captures the
    damping and switches the surplus neuron off.)"""
    train = simulate_oscillators(3000, seed=0)
    test = simulate_oscillators(500, seed=1)
    torch.manual_seed(0)
    model = SciNet(latent=3, hidden=(64, 32))
    history = train_scinet(model, train.observations, train.questions, train.answers, epochs=25, lr=3e-3,
                           batch_size=128, beta=1e-3, seed=0)
    assert history[-1]["mse"] < 0.5 * history[0]["mse"]
    a = analyse_latents(model, test.observations, test.questions, test.answers, test.parameters)
    assert float(a.best_correlation[0]) > 0.95, a.correlation
    assert a.answer_rmse < 0.8 * a.answer_std


def test_neurons_the_answer_does_not_need_collapse_to_the_prior():
    """When the answer depends on the question only, every latent neuron is surplus: the KL
    penalty drives each posterior to N(0, 1) whatever the observation."""
    gen = torch.Generator().manual_seed(0)
    obs = torch.randn(512, 8, generator=gen)
    q = torch.rand(512, 1, generator=gen) * 6
    answers = torch.sin(q)
    torch.manual_seed(0)
    model = SciNet(n_obs=8, latent=3, hidden=(16,))
    train_scinet(model, obs, q, answers, epochs=60, lr=3e-3, batch_size=128, beta=0.05, seed=0)
    a = analyse_latents(model, obs, q, answers, torch.randn(512, 1, generator=gen, dtype=torch.float64))
    assert (a.kl < 0.05).all(), a.kl
    assert not a.active.any()
    assert a.answer_rmse < 0.75 * a.answer_std  # the decoder still answers from the question
