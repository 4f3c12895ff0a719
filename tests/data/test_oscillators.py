"""Damped oscillators: the closed form solves the equation of motion; the parameters are recoverable by a direct fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from medlens.data.synthetic.oscillators import damped_oscillator, fit_oscillator, simulate_oscillators
from medlens.errors import InputError


@pytest.mark.parametrize("kappa, b", [(5.0, 0.5), (7.3, 0.8), (10.0, 1.0)])
def test_the_closed_form_matches_a_numerical_integration(kappa, b):
    t = np.linspace(0, 10, 201)
    sol = solve_ivp(lambda _t, y: [y[1], -kappa * y[0] - b * y[1]], (0, 10), [1.0, 0.0], t_eval=t,
                    rtol=1e-10, atol=1e-12)
    ours = damped_oscillator(torch.tensor([kappa]), torch.tensor([b]), torch.as_tensor(t))[0].numpy()
    assert np.abs(ours - sol.y[0]).max() < 1e-6


def test_simulated_sets_hold_their_parameters_and_answers():
    data = simulate_oscillators(300, seed=4)
    assert data.observations.shape == (300, 50) and data.questions.shape == (300, 1) and data.answers.shape == (300, 1)
    kappa, b = data.parameters[:, 0], data.parameters[:, 1]
    assert 5 <= float(kappa.min()) and float(kappa.max()) <= 10 and 0.5 <= float(b.min()) and float(b.max()) <= 1
    torch.testing.assert_close(data.observations[:, 0], torch.ones(300))  # x(0) = 1
    expected = damped_oscillator(kappa, b, data.questions.double())[:, :1]
    torch.testing.assert_close(data.answers.double(), expected, atol=1e-6, rtol=0)
    assert 0 <= float(data.questions.min()) and float(data.questions.max()) <= 10
    with pytest.raises(InputError):
        simulate_oscillators(10, kappa_range=(0.1, 1.0), b_range=(0.5, 1.0))  # overdamped


@pytest.mark.parametrize("noise, tol", [(0.0, 1e-3), (0.02, 0.05)])
def test_the_parameters_are_recoverable_by_a_direct_fit(noise, tol):
    data = simulate_oscillators(12, noise=noise, seed=7)
    for obs, (kappa, b) in zip(data.observations, data.parameters.tolist()):
        k_hat, b_hat = fit_oscillator(obs, data.times)
        assert abs(k_hat - kappa) / kappa < tol, (k_hat, kappa)
        assert abs(b_hat - b) / b < 4 * tol, (b_hat, b)
