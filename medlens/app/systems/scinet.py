"""SciNet (section 4 of the reference survey) trained on damped oscillators and measured against
their parameters. :mod:`medlens.report.systems` turns the result into a report section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from medlens.app.systems.base import SystemInfo, SystemResult
from medlens.core.progress import SILENT, Progress
from medlens.core.random import derive_seed, seeded

__all__ = ["INFO", "SciNetResult", "run_scinet", "train_scinet_on_oscillators"]


@dataclass
class SciNetResult(SystemResult):
    """SciNet trained on damped oscillators, measured against their parameters.

    Attributes
    ----------
    analysis : LatentAnalysis
        Held-out correlations, KL per neuron, answer error.
    latent_means : torch.Tensor
        ``(N_test, latent)`` posterior means of the held-out observations.
    parameters : torch.Tensor
        ``(N_test, P)`` their generating parameters.
    traversal_values : torch.Tensor
        ``(latent, V)`` the values each neuron sweeps (its held-out mean +- 2 sd).
    traversal : torch.Tensor
        ``(latent, V, Q)`` decoded positions over the question grid :attr:`question_grid`.
    question_grid : torch.Tensor
        ``(Q,)`` times.
    reference : torch.Tensor
        ``(Q,)`` the true positions of the reference oscillator the traversal starts from.
    history : list of dict
    """

    analysis: Any
    latent_means: torch.Tensor
    parameters: torch.Tensor
    traversal_values: torch.Tensor
    traversal: torch.Tensor
    question_grid: torch.Tensor
    reference: torch.Tensor
    history: list
    model: nn.Module = field(repr=False, default=None)
    settings: dict = field(default_factory=dict)


def train_scinet_on_oscillators(*, n_train: int = 20000, latent: int = 3, epochs: int = 120, beta: float = 1e-3,
                                lr: float = 3e-3, seed: int = 0):
    """SciNet on simulated damped oscillators (the paper's setting). Returns ``(model, history)``."""
    from medlens.data.synthetic.oscillators import simulate_oscillators
    from medlens.systems.scinet import SciNet, train_scinet

    train = simulate_oscillators(n_train, seed=seed)
    with seeded(seed):
        model = SciNet(n_obs=train.observations.shape[1], latent=latent)
    history = train_scinet(model, train.observations, train.questions, train.answers, epochs=epochs, beta=beta,
                           lr=lr, seed=seed)
    return model, history


def run_scinet(*, n_train: int = 20000, n_test: int = 2000, latent: int = 3, epochs: int = 120, beta: float = 1e-3,
               lr: float = 3e-3, seed: int = 0, model: nn.Module | None = None,
               progress: Progress = SILENT) -> SciNetResult:
    """Train (unless ``model`` is given) and measure SciNet on held-out oscillators."""
    from medlens.data.synthetic.oscillators import (
        damped_oscillator,
        simulate_oscillators,
    )
    from medlens.systems.scinet import analyse_latents, latent_traversal

    history: list = []
    if model is None:
        model, history = train_scinet_on_oscillators(n_train=n_train, latent=latent, epochs=epochs, beta=beta,
                                                     lr=lr, seed=seed)
    test = simulate_oscillators(n_test, seed=derive_seed(seed, "test set"))
    analysis = analyse_latents(model, test.observations, test.questions, test.answers, test.parameters,
                               parameter_names=test.parameter_names)
    with torch.no_grad():
        mu, _ = model.encode(test.observations)
    grid = torch.linspace(0, 10, 101)
    # the reference: the held-out oscillator closest to the middle of the parameter ranges
    centre = test.parameters.mean(0)
    ref = int(((test.parameters - centre) / test.parameters.std(0)).pow(2).sum(1).argmin())
    values = torch.stack([torch.linspace(float(mu[:, j].mean() - 2 * mu[:, j].std()),
                                         float(mu[:, j].mean() + 2 * mu[:, j].std()), 5) for j in range(mu.shape[1])])
    traversal = torch.stack([latent_traversal(model, test.observations[ref], j, values[j], grid[:, None])[..., 0]
                             for j in range(mu.shape[1])])
    reference = damped_oscillator(test.parameters[ref, :1], test.parameters[ref, 1:], grid)[0].float()
    return SciNetResult(analysis, mu, test.parameters, values, traversal, grid, reference, history, model,
                        {"n_train": n_train, "n_test": n_test, "latent": latent, "epochs": epochs, "beta": beta,
                         "lr": lr, "seed": seed})


#: The registry entry: ``INFO.run(SystemConfig(...), progress)``.
INFO = SystemInfo(
    "scinet", "representation", "SciNet on damped oscillators", run_scinet,
    full={"n_train": 20000, "n_test": 2000, "epochs": 120},
    quick={"n_train": 500, "n_test": 200, "epochs": 2},
)
