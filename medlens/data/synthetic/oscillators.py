"""Damped harmonic oscillators: time series with a few known generating parameters.

The ground truth for SciNet (Iten, Metger, Wilming, del Rio and Renner, "Discovering physical
concepts with neural networks", Physical Review Letters 124, 010508, 2020, section "Damped
pendulum"): a unit mass on a spring of constant ``kappa`` with damping ``b``,

``x'' = -kappa x - b x'``,  ``x(0) = x0``, ``x'(0) = v0``,

observed at ``n_obs`` equally spaced times in ``[0, t_obs]``; the question is a time ``t`` and
the answer the position ``x(t)``. Only ``kappa`` and ``b`` vary between samples, so a network
that answers every question must hold exactly these two numbers.

The paper samples ``kappa`` in ``[5, 10]`` and ``b`` in ``[0.5, 1]`` with 50 observations over
5 seconds; these are the defaults. Every sample is underdamped (``b^2 < 4 kappa``), for which

``x(t) = exp(-b t / 2) (x0 cos(w t) + (v0 + b x0 / 2) / w sin(w t))``,  ``w = sqrt(kappa - b^2 / 4)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from medlens.core.random import generator
from medlens.errors import InputError

PARAMETER_NAMES = ("spring constant kappa", "damping b")


def damped_oscillator(kappa: torch.Tensor, b: torch.Tensor, t: torch.Tensor, x0: float = 1.0, v0: float = 0.0) -> torch.Tensor:
    """Position of an underdamped oscillator, closed form.

    Parameters
    ----------
    kappa, b : torch.Tensor
        ``(N,)`` spring constants and damping coefficients (unit mass), ``b^2 < 4 kappa``.
    t : torch.Tensor
        ``(T,)`` times shared by all samples, or ``(N, T)`` per sample.

    Returns
    -------
    torch.Tensor
        ``(N, T)`` float64 positions.
    """
    kappa = torch.as_tensor(kappa, dtype=torch.float64).reshape(-1, 1)
    b = torch.as_tensor(b, dtype=torch.float64).reshape(-1, 1)
    t = torch.as_tensor(t, dtype=torch.float64)
    if t.ndim == 1:
        t = t[None]
    if (b.pow(2) >= 4 * kappa).any():
        raise InputError("damped_oscillator covers the underdamped case only (b^2 < 4 kappa)")
    w = (kappa - b.pow(2) / 4).sqrt()
    return torch.exp(-b * t / 2) * (x0 * torch.cos(w * t) + (v0 + b * x0 / 2) / w * torch.sin(w * t))


@dataclass
class OscillatorSet:
    """Observations, questions and answers of damped oscillators.

    Attributes
    ----------
    observations : torch.Tensor
        ``(N, n_obs)`` float32 positions at :attr:`times` (with observation noise, if any).
    times : torch.Tensor
        ``(n_obs,)`` observation times.
    questions : torch.Tensor
        ``(N, 1)`` float32 query times.
    answers : torch.Tensor
        ``(N, 1)`` float32 noise-free positions at the query times.
    parameters : torch.Tensor
        ``(N, 2)`` float64: ``kappa`` and ``b`` of each sample (:data:`PARAMETER_NAMES`).
    """

    observations: torch.Tensor
    times: torch.Tensor
    questions: torch.Tensor
    answers: torch.Tensor
    parameters: torch.Tensor
    parameter_names: tuple = PARAMETER_NAMES

    def __len__(self) -> int:
        return len(self.observations)

    def subset(self, index: torch.Tensor) -> "OscillatorSet":
        return OscillatorSet(self.observations[index], self.times, self.questions[index], self.answers[index],
                             self.parameters[index], self.parameter_names)


def simulate_oscillators(
    n: int, *, n_obs: int = 50, t_obs: float = 5.0, question_range: tuple[float, float] = (0.0, 10.0),
    kappa_range: tuple[float, float] = (5.0, 10.0), b_range: tuple[float, float] = (0.5, 1.0),
    noise: float = 0.0, seed: int = 0,
) -> OscillatorSet:
    """``n`` oscillators with uniform random ``kappa`` and ``b`` and one random question each.

    Parameters
    ----------
    n : int
    n_obs, t_obs : int, float
        Observation grid: ``n_obs`` times from 0 to ``t_obs`` (inclusive).
    question_range : (float, float)
        Query times are uniform in this range (beyond ``t_obs`` the answer is a prediction).
    kappa_range, b_range : (float, float)
    noise : float
        Standard deviation of Gaussian noise added to the observations (not to the answers).
    seed : int
    """
    if n < 1 or n_obs < 2:
        raise InputError(f"simulate_oscillators needs n >= 1 and n_obs >= 2, got {n}, {n_obs}")
    if not (0 < kappa_range[0] <= kappa_range[1] and 0 <= b_range[0] <= b_range[1]):
        raise InputError(f"invalid parameter ranges kappa {kappa_range}, b {b_range}")
    if b_range[1] ** 2 >= 4 * kappa_range[0]:
        raise InputError("the ranges include overdamped oscillators (b^2 >= 4 kappa)")
    gen = generator(seed, "oscillators")

    def uniform(lo: float, hi: float, size: tuple) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(size, generator=gen, dtype=torch.float64)

    kappa, b = uniform(*kappa_range, (n,)), uniform(*b_range, (n,))
    times = torch.linspace(0, t_obs, n_obs, dtype=torch.float64)
    obs = damped_oscillator(kappa, b, times)
    if noise > 0:
        obs = obs + noise * torch.randn(obs.shape, generator=gen, dtype=torch.float64)
    q = uniform(*question_range, (n, 1))
    answers = damped_oscillator(kappa, b, q)
    return OscillatorSet(obs.float(), times, q.float(), answers.float(), torch.stack([kappa, b], 1))


def fit_oscillator(observation: torch.Tensor, times: torch.Tensor, x0: float = 1.0, v0: float = 0.0) -> tuple[float, float]:
    """Least-squares ``(kappa, b)`` of one observed series (scipy ``curve_fit``): the direct fit
    that shows the parameters are recoverable from an observation."""
    import numpy as np
    from scipy.optimize import curve_fit

    t = times.double().numpy()
    y = observation.double().numpy()

    def model(tt, kappa, b):
        w = np.sqrt(np.maximum(kappa - b**2 / 4, 1e-9))
        return np.exp(-b * tt / 2) * (x0 * np.cos(w * tt) + (v0 + b * x0 / 2) / w * np.sin(w * tt))

    # the frequency dominates the fit: start from the zero crossings' period
    crossings = np.nonzero(np.diff(np.sign(y)))[0]
    if len(crossings) >= 2:
        half = float(np.mean(np.diff(t[crossings])))
        kappa0 = (np.pi / half) ** 2
    else:
        kappa0 = 7.5
    (kappa, b), _ = curve_fit(model, t, y, p0=(kappa0, 0.5), maxfev=5000)
    return float(kappa), float(b)
