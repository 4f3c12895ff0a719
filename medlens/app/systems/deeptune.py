"""DeepTune (section 4 of the reference survey) on simulated neurons, composed and measured.

DeepTune needs the compute package :mod:`medlens.systems` (regression on ensemble features)
and :mod:`medlens.featurevis` (the rendering of each fitted model); the two are siblings that do
not import each other, so their composition lives here, in the application layer.
:mod:`medlens.report.systems` turns the result into a report section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from medlens.app.systems.base import SystemInfo, SystemResult
from medlens.core.progress import SILENT, Progress
from medlens.core.random import derive_seed, generator, seeded

__all__ = ["INFO", "DeepTuneResult", "run_deeptune", "train_ensemble"]


@dataclass
class DeepTuneResult(SystemResult):
    """DeepTune on simulated neurons: accuracy, images and their similarity to the truth.

    Attributes
    ----------
    neuron_names : list of str
    member_correlation : torch.Tensor
        ``(M, K)`` held-out prediction correlation of each member's model of each neuron.
    consensus_correlation : torch.Tensor
        ``(K,)``.
    noise_ceiling : float
        Best correlation any model can reach with the noisy recordings.
    member_images : torch.Tensor
        ``(M, K, 1, H, W)`` DeepTune images of each member.
    consensus_images : torch.Tensor
        ``(K, 1, H, W)``.
    preferred : torch.Tensor
        ``(K, 1, H, W)`` the neurons' true preferred stimuli.
    member_similarity : torch.Tensor
        ``(M, K)`` normalised cross-correlation at the best shift of each member image with the
        true preferred stimulus.
    consensus_similarity : torch.Tensor
        ``(K,)``.
    chance_similarity : torch.Tensor
        ``(K,)``: the same score for images rendered for the *other* neurons (mean), i.e. what
        an image that is not about this neuron scores.
    """

    neuron_names: list
    member_correlation: torch.Tensor
    consensus_correlation: torch.Tensor
    noise_ceiling: float
    member_images: torch.Tensor
    consensus_images: torch.Tensor
    preferred: torch.Tensor
    member_similarity: torch.Tensor
    consensus_similarity: torch.Tensor
    chance_similarity: torch.Tensor
    settings: dict = field(default_factory=dict)


def train_ensemble(n_members: int = 4, *, epochs: int = 2, seed: int = 0, widths: Sequence[int] = (16, 32),
                   kernel_size: int = 5) -> list[nn.Module]:
    """The DeepTune ensemble: small CNNs trained on PneumoniaMNIST with different seeds.

    Stands in for the ImageNet networks of the paper: real models trained on real images, whose
    first-block features are the regressors.
    """
    from medlens.data import load_dataset
    from medlens.models.cnn import CNN
    from medlens.models.training import shift_augment, train_classifier

    train, val = load_dataset("pneumoniamnist", "train"), load_dataset("pneumoniamnist", "val")
    members = []
    for m in range(n_members):
        member_seed = derive_seed(seed, "ensemble member", m)
        with seeded(member_seed):
            model = CNN(2, 1, 2, widths=widths, kernel_size=kernel_size, input_shape=(1, 28, 28))
        train_classifier(model, train.inputs, train.labels, val.inputs, val.labels, epochs=epochs,
                         seed=member_seed, augment=shift_augment, progress=False)
        members.append(model.eval())
    return members


def _similarities(images: torch.Tensor, neurons: Sequence[Any], max_shift: int) -> torch.Tensor:
    """``(K, K)``: entry ``(i, j)`` scores image ``i`` against neuron ``j``'s preferred stimulus."""
    from medlens.systems.deeptune import best_shift_ncc

    size = images.shape[-1]
    out = torch.empty(len(images), len(neurons), dtype=torch.float64)
    for j, neuron in enumerate(neurons):
        template = neuron.preferred_stimulus(size)
        free = getattr(neuron, "kind", "") == "gabor-energy"
        for i in range(len(images)):
            out[i, j] = best_shift_ncc(images[i], template, max_shift=max_shift, polarity_free=free)
    return out


def run_deeptune(
    members: Sequence[nn.Module] | None = None, *, n_members: int = 4, n_stimuli: int = 3000, noise: float = 0.3,
    steps: int = 192, blocks: int = 1, max_shift: int = 3, seed: int = 0, neurons: Sequence[Any] | None = None,
    progress: Progress = SILENT,
) -> DeepTuneResult:
    """Simulate neurons, fit DeepTune on an ensemble, render and score every DeepTune image.

    Parameters
    ----------
    members : sequence of nn.Module, optional
        The ensemble (medlens CNNs); trained by :func:`train_ensemble` when omitted.
    n_stimuli : int
        Stimuli recorded (half bundled scans, half textures); a fifth is held out.
    noise : float
        Recording noise as a fraction of each neuron's response standard deviation.
    steps : int
        Feature-visualisation steps per image (default Fourier parameterisation).
    blocks : int
        Feature depth (CNN blocks) the regression reads.
    max_shift : int
        Shift range of the similarity score, in pixels.
    """
    import medlens.featurevis as fv
    from medlens.data.synthetic.simulated_neurons import (
        default_neurons,
        responses,
        stimulus_set,
    )
    from medlens.systems.deeptune import fit_deeptune

    neurons = list(neurons) if neurons is not None else default_neurons(28)
    if members is None:
        members = train_ensemble(n_members, seed=seed)
    images = stimulus_set(n_stimuli, 28, seed=seed)
    recorded, _ = responses(neurons, images, noise=noise, generator=generator(seed, "recording noise"))
    fit = fit_deeptune(members, images, recorded, blocks=blocks, seed=seed)
    k = len(neurons)
    objectives = [fv.output(j) for j in range(k)]
    shape = (k, 1, 28, 28)
    member_images = torch.stack([
        fv.render(fit.member_model(m), objectives, shape, steps=steps, seed=seed).images for m in range(len(members))
    ])  # (M, K, 1, H, W)
    consensus_images = fv.render(fit.consensus_model(), objectives, shape, steps=steps, seed=seed).images
    member_sim = torch.stack([_similarities(member_images[m], neurons, max_shift).diagonal()
                              for m in range(len(members))])
    cons_all = _similarities(consensus_images, neurons, max_shift)  # (K images, K neurons)
    off = ~torch.eye(k, dtype=torch.bool)
    chance = torch.stack([cons_all[:, j][off[:, j]].mean() for j in range(k)])
    names = [_neuron_name(n) for n in neurons]
    preferred = torch.stack([n.preferred_stimulus(28) for n in neurons]).float()
    return DeepTuneResult(
        names, fit.member_correlation, fit.consensus_correlation, 1.0 / math.sqrt(1 + noise**2),
        member_images, consensus_images, preferred, member_sim, cons_all.diagonal().clone(), chance,
        {"members": len(members), "stimuli": n_stimuli, "noise": noise, "steps": steps, "blocks": blocks,
         "max_shift": max_shift, "seed": seed},
    )


def _neuron_name(neuron: Any) -> str:
    if getattr(neuron, "kind", "") == "gabor-energy":
        return (f"complex cell {math.degrees(neuron.orientation):.0f} deg, period {neuron.period:g} px "
                f"at ({neuron.centre[0]:.0f}, {neuron.centre[1]:.0f})")
    return f"centre-surround sigma {neuron.sigma:g} px at ({neuron.centre[0]:.0f}, {neuron.centre[1]:.0f})"


#: The registry entry: ``INFO.run(SystemConfig(...), progress)``.
INFO = SystemInfo(
    "deeptune", "representation", "DeepTune on simulated neurons", run_deeptune,
    full={"n_members": 4, "n_stimuli": 3000, "steps": 192},
    quick={"n_members": 2, "n_stimuli": 300, "steps": 8},
)
