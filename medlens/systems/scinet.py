"""SciNet: a few latent neurons that hold the physical parameters of what was observed.

Iten, Metger, Wilming, del Rio and Renner, "Discovering physical concepts with neural
networks", Physical Review Letters 124, 010508 (2020); section 4 of the reference survey.

An encoder maps an observation (a time series) to a few latent neurons, each a Gaussian
``N(mu_i, sigma_i^2)``; a decoder answers a question (here: the value at a queried time) from a
sample of the latent and the question. Training minimises the answer's squared error plus
``beta`` times the KL divergence of the latent from the prior ``N(0, 1)`` (a beta-VAE penalty,
Higgins et al. 2017): a latent neuron that is not needed to answer pays for any information it
carries, so it collapses to the prior, and the neurons that stay on hold the generating
parameters. :func:`analyse_latents` measures exactly that against known parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

from medlens.core.random import generator
from medlens.models.training import fit
from medlens.errors import InputError


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ELU())
    return nn.Sequential(*layers)


class SciNet(nn.Module):
    """Encoder - latent neurons - question-conditioned decoder.

    Registered as the architecture ``"scinet"`` through :data:`medlens.models.io.ENTRY_POINTS`.

    Parameters
    ----------
    n_obs : int
        Length of an observation.
    latent : int
        Number of latent neurons (more than the parameters to discover; the surplus switches off).
    question : int
        Size of a question.
    answer : int
        Size of an answer.
    hidden : sequence of int
        Hidden layer sizes of encoder and decoder (the paper: 500, 100 for the encoder; 100, 100
        for the decoder; smaller here, for CPU training in a minute).

    Shapes: observations ``(B, n_obs)``, questions ``(B, question)``, answers ``(B, answer)``,
    latents ``(B, latent)``.
    """

    arch = "scinet"

    def __init__(self, n_obs: int = 50, latent: int = 3, question: int = 1, answer: int = 1,
                 hidden: Sequence[int] = (128, 64)) -> None:
        super().__init__()
        self.config = {"n_obs": n_obs, "latent": latent, "question": question, "answer": answer, "hidden": list(hidden)}
        self.latent = latent
        self.encoder = _mlp([n_obs, *hidden, 2 * latent])
        self.decoder = _mlp([latent + question, *reversed(list(hidden)), answer])

    def encode(self, observations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior means and log-variances, each ``(B, latent)``."""
        h = self.encoder(observations)
        return h[:, : self.latent], h[:, self.latent :].clamp(-12.0, 6.0)

    def decode(self, latents: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        """Answers ``(B, answer)`` from latents ``(B, latent)`` and questions ``(B, question)``."""
        return self.decoder(torch.cat([latents, questions], 1))

    def forward(self, observations: torch.Tensor, questions: torch.Tensor) -> torch.Tensor:
        """Deterministic answer from the posterior mean."""
        mu, _ = self.encode(observations)
        return self.decode(mu, questions)


def kl_per_neuron(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL divergence of ``N(mu, exp(logvar))`` from ``N(0, 1)`` per sample and neuron: ``(B, latent)``."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)


def train_scinet(
    model: SciNet, observations: torch.Tensor, questions: torch.Tensor, answers: torch.Tensor, *,
    epochs: int = 150, beta: float = 1e-3, lr: float = 1e-3, batch_size: int = 256, warmup: int = 10,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Train SciNet: answer MSE plus ``beta`` times the latent KL (summed over neurons).

    ``beta`` ramps up linearly over the first ``warmup`` epochs (the decoder first learns to use
    the latent, then the penalty prunes it). Adam with a cosine-annealed learning rate.

    Returns
    -------
    list of dict
        Per epoch: ``loss``, ``mse``, ``kl``.
    """
    n = len(observations)
    if not (len(questions) == len(answers) == n):
        raise InputError("observations, questions and answers must have the same number of rows")
    gen = generator(seed, "batches")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, epochs))
    weight = 0.0

    def ramp(epoch: int) -> None:
        nonlocal weight
        weight = beta * min(1.0, (epoch + 1) / max(1, warmup))

    def batches(epoch: int):
        order = torch.randperm(n, generator=gen)
        for start in range(0, n, batch_size):
            yield order[start : start + batch_size]

    def step_loss(idx: torch.Tensor) -> tuple:
        mu, logvar = model.encode(observations[idx])
        eps = torch.randn(mu.shape, generator=gen, dtype=mu.dtype)
        z = mu + eps * (0.5 * logvar).exp()  # reparameterisation
        mse = (model.decode(z, questions[idx]) - answers[idx]).pow(2).mean()
        kl = kl_per_neuron(mu, logvar).sum(1).mean()
        return mse + weight * kl, len(idx), {"mse": mse, "kl": kl}

    history = fit(model, batches, step_loss, epochs=epochs, optimizer=opt, scheduler=sched,
                  scheduler_interval="epoch", before_epoch=ramp, desc="training SciNet")
    model.eval()
    return history


@dataclass
class LatentAnalysis:
    """What SciNet's latent neurons hold, measured against the known generating parameters.

    Attributes
    ----------
    correlation : torch.Tensor
        ``(P, latent)``: absolute Pearson correlation of each parameter with each neuron's
        posterior mean, on held-out observations.
    best_neuron : torch.Tensor
        ``(P,)`` the neuron most correlated with each parameter.
    best_correlation : torch.Tensor
        ``(P,)``.
    kl : torch.Tensor
        ``(latent,)`` mean KL of each neuron's posterior from the prior (nats); near 0 means the
        neuron is switched off (its posterior is the prior whatever the input).
    active : torch.Tensor
        ``(latent,)`` bool: ``kl > active_threshold``.
    answer_rmse : float
        Root mean squared answer error on held-out observations (posterior means).
    answer_std : float
        Standard deviation of the held-out answers (the error of always answering their mean).
    parameter_names : tuple of str
    """

    correlation: torch.Tensor
    best_neuron: torch.Tensor
    best_correlation: torch.Tensor
    kl: torch.Tensor
    active: torch.Tensor
    answer_rmse: float
    answer_std: float
    parameter_names: tuple


def analyse_latents(
    model: SciNet, observations: torch.Tensor, questions: torch.Tensor, answers: torch.Tensor,
    parameters: torch.Tensor, *, parameter_names: Sequence[str] = (), active_threshold: float = 0.05,
) -> LatentAnalysis:
    """Correlate latent neurons with known parameters; KL per neuron; held-out answer error.

    Parameters
    ----------
    observations, questions, answers : torch.Tensor
        Held-out data, ``(N, n_obs)``, ``(N, q)``, ``(N, a)``.
    parameters : torch.Tensor
        ``(N, P)`` the generating parameters of each observation.
    """
    with torch.no_grad():
        mu, logvar = model.encode(observations)
        pred = model.decode(mu, questions)
    mu64 = mu.double() - mu.double().mean(0)
    p64 = parameters.double() - parameters.double().mean(0)
    den = p64.norm(dim=0)[:, None] * mu64.norm(dim=0)[None, :]
    corr = ((p64.T @ mu64) / den.clamp_min(1e-300)).abs()  # (P, latent)
    corr = torch.where(den > 0, corr, torch.zeros_like(corr))
    best = corr.max(1)
    kl = kl_per_neuron(mu.double(), logvar.double()).mean(0)
    rmse = float((pred.double() - answers.double()).pow(2).mean().sqrt())
    names = tuple(parameter_names) or tuple(f"parameter {i}" for i in range(parameters.shape[1]))
    return LatentAnalysis(corr, best.indices, best.values, kl, kl > active_threshold, rmse,
                          float(answers.double().std()), names)


def latent_traversal(
    model: SciNet, observation: torch.Tensor, neuron: int, values: torch.Tensor, questions: torch.Tensor,
) -> torch.Tensor:
    """Answers as one latent neuron sweeps ``values``, the others held at the observation's means.

    Parameters
    ----------
    observation : torch.Tensor
        ``(n_obs,)`` the reference observation.
    neuron : int
    values : torch.Tensor
        ``(V,)`` values of the neuron.
    questions : torch.Tensor
        ``(Q, question)`` questions (e.g. a time grid).

    Returns
    -------
    torch.Tensor
        ``(V, Q, answer)``.
    """
    if not 0 <= neuron < model.latent:
        raise InputError(f"SciNet has {model.latent} latent neurons; neuron {neuron} does not exist")
    with torch.no_grad():
        mu, _ = model.encode(observation.reshape(1, -1))
        out = []
        for v in values.tolist():
            z = mu.clone()
            z[0, neuron] = v
            out.append(model.decode(z.expand(len(questions), -1), questions))
    return torch.stack(out)
