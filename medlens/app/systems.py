"""The representation systems of section 4 of the reference survey, composed and measured.

DeepTune needs the compute package :mod:`medlens.systems` (regression on ensemble features)
and :mod:`medlens.featurevis` (the rendering of each fitted model); the two are siblings that do
not import each other, so their composition lives here, in the application layer. SciNet and
GroupINN need only :mod:`medlens.systems`; this module also trains them on their simulators for
``medlens train --arch scinet|groupinn`` and builds the systems report.

Every function returns typed results with the numbers the acceptance criteria of issue 14 ask
for; :mod:`medlens.report.systems` turns them into a report section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
from torch import nn

from medlens.core.random import seeded


# ---- DeepTune -------------------------------------------------------------------------------


@dataclass
class DeepTuneResult:
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
        with seeded(seed + m):
            model = CNN(2, 1, 2, widths=widths, kernel_size=kernel_size, input_shape=(1, 28, 28))
        train_classifier(model, train.inputs, train.labels, val.inputs, val.labels, epochs=epochs,
                         seed=seed + m, augment=shift_augment, progress=False)
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
    from medlens.data.synthetic.simulated_neurons import default_neurons, responses, stimulus_set
    from medlens.systems.deeptune import fit_deeptune

    neurons = list(neurons) if neurons is not None else default_neurons(28)
    if members is None:
        members = train_ensemble(n_members, seed=seed)
    images = stimulus_set(n_stimuli, 28, seed=seed)
    recorded, _ = responses(neurons, images, noise=noise, generator=torch.Generator().manual_seed(seed + 1))
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


# ---- SciNet ---------------------------------------------------------------------------------


@dataclass
class SciNetResult:
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
               lr: float = 3e-3, seed: int = 0, model: nn.Module | None = None) -> SciNetResult:
    """Train (unless ``model`` is given) and measure SciNet on held-out oscillators."""
    from medlens.data.synthetic.oscillators import damped_oscillator, simulate_oscillators
    from medlens.systems.scinet import analyse_latents, latent_traversal

    history: list = []
    if model is None:
        model, history = train_scinet_on_oscillators(n_train=n_train, latent=latent, epochs=epochs, beta=beta,
                                                     lr=lr, seed=seed)
    test = simulate_oscillators(n_test, seed=seed + 10_000)
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


# ---- GroupINN -------------------------------------------------------------------------------


@dataclass
class GroupINNResult:
    """GroupINN on simulated fMRI with planted groups.

    Attributes
    ----------
    accuracy, baseline_accuracy : float
        Test accuracy of GroupINN and of logistic regression on the flattened connectivity.
    ari : float
        Adjusted Rand index of the learnt groups against the planted ones.
    ari_without_cohesion : float or None
        The same for GroupINN trained with the paper's losses only (no cohesion term).
    accuracy_without_cohesion : float or None
    relevance : torch.Tensor
        ``(2, G, G)`` group-to-group relevance for class 1 against class 0 (positive and negative
        connectivity), rows and columns in planted-group order (learnt groups matched to planted
        ones).
    planted_difference : torch.Tensor
        ``(G, G)`` mean class-1 minus class-0 connectivity between planted groups (test subjects).
    orthogonality : float
        ``||W^T W - I||_F`` of the learnt assignment.
    min_assignment : float
        Smallest entry of ``W`` (non-negative by construction).
    learnt_groups, planted_groups : torch.Tensor
        ``(R,)``.
    """

    accuracy: float
    baseline_accuracy: float
    baseline_C: float
    ari: float
    ari_without_cohesion: float | None
    accuracy_without_cohesion: float | None
    relevance: torch.Tensor
    planted_difference: torch.Tensor
    orthogonality: float
    min_assignment: float
    learnt_groups: torch.Tensor
    planted_groups: torch.Tensor
    plant: Any = None
    model: nn.Module = field(repr=False, default=None)
    settings: dict = field(default_factory=dict)


def train_groupinn_on_fmri(*, n_train: int = 60, n_groups: int = 5, epochs: int = 600, cohesion_weight: float = 1.0,
                           weight_decay: float = 1e-3, seed: int = 0, data: Any = None):
    """GroupINN on simulated subjects. Returns ``(model, history, train set)``."""
    from medlens.data.synthetic.fmri import connectivity, simulate_fmri
    from medlens.systems.groupinn import GroupINN, train_groupinn

    train = data if data is not None else simulate_fmri(n_train, n_groups=n_groups, seed=seed)
    conn = connectivity(train.timeseries)
    with seeded(seed):
        model = GroupINN(conn.shape[-1], n_groups, seed=seed)
    history = train_groupinn(model, conn, train.labels, epochs=epochs, cohesion_weight=cohesion_weight,
                             weight_decay=weight_decay, seed=seed)
    return model, history, train


def run_groupinn(*, n_train: int = 60, n_test: int = 200, n_groups: int = 5, epochs: int = 600,
                 cohesion_weight: float = 1.0, weight_decay: float = 1e-3, compare_without_cohesion: bool = True,
                 seed: int = 0) -> GroupINNResult:
    """Train GroupINN and the logistic baseline on the same few subjects; score on held-out ones."""
    from medlens.data.synthetic.fmri import block_means, connectivity, simulate_fmri
    from medlens.systems.groupinn import (
        adjusted_rand_index, group_relevance, logistic_baseline, match_groups, orthogonality_penalty,
    )

    train = simulate_fmri(n_train, n_groups=n_groups, seed=seed)
    test = simulate_fmri(n_test, n_groups=n_groups, seed=seed + 10_000)
    ctr, cte = connectivity(train.timeseries), connectivity(test.timeseries)
    model, _, _ = train_groupinn_on_fmri(n_groups=n_groups, epochs=epochs, cohesion_weight=cohesion_weight,
                                         weight_decay=weight_decay, seed=seed, data=train)

    def accuracy(m: nn.Module) -> float:
        with torch.no_grad():
            return float((m(cte).argmax(1) == test.labels).double().mean())

    ari_plain = acc_plain = None
    if compare_without_cohesion and cohesion_weight:
        plain, _, _ = train_groupinn_on_fmri(n_groups=n_groups, epochs=epochs, cohesion_weight=0.0,
                                             weight_decay=weight_decay, seed=seed, data=train)
        ari_plain, acc_plain = adjusted_rand_index(plain.groups(), train.groups), accuracy(plain)
    baseline = logistic_baseline(ctr, train.labels, cte, test.labels, seed=seed)
    learnt = model.groups()
    perm = match_groups(learnt, train.groups)  # learnt group -> planted group
    rel = group_relevance(model, cte)  # (2, G, G) in learnt order
    order = torch.empty_like(perm)
    order[perm] = torch.arange(len(perm))  # planted group -> learnt group
    rel = rel[:, order][:, :, order]
    blocks = block_means(cte, test.groups)
    diff = blocks[test.labels == 1].mean(0) - blocks[test.labels == 0].mean(0)
    w = model.assignment().detach()
    return GroupINNResult(
        accuracy(model), baseline.accuracy, baseline.C, adjusted_rand_index(learnt, train.groups), ari_plain, acc_plain,
        rel, diff.float(), float(orthogonality_penalty(w).sqrt()), float(w.min()), learnt, train.groups, train.plant,
        model, {"n_train": n_train, "n_test": n_test, "n_groups": n_groups, "epochs": epochs,
                "cohesion_weight": cohesion_weight, "weight_decay": weight_decay, "seed": seed},
    )


# ---- medlens train --arch scinet | groupinn ---------------------------------------------------

#: Architectures of this module that ``medlens train`` trains on their simulators, and the data
#: name each accepts.
SYSTEM_DATA = {"scinet": "oscillators", "groupinn": "simulated-fmri"}


def train_system(arch: str, data: str, *, epochs: int, seed: int = 0) -> tuple[nn.Module, dict[str, Any], str]:
    """Train a system architecture on its simulator for ``medlens train``.

    Returns
    -------
    (model, meta, summary)
        The model, metadata to store with it, and a one-line summary of its held-out scores.
    """
    from medlens.errors import UnknownNameError

    if arch not in SYSTEM_DATA:
        raise UnknownNameError(f"unknown system architecture {arch!r}; known: {', '.join(sorted(SYSTEM_DATA))}")
    if data != SYSTEM_DATA[arch]:
        raise UnknownNameError(f"--arch {arch} trains on its simulator: use --data {SYSTEM_DATA[arch]}, not {data!r}")
    if arch == "scinet":
        model, history = train_scinet_on_oscillators(epochs=epochs, seed=seed)
        result = run_scinet(model=model, seed=seed)
        a = result.analysis
        scores = {"answer_rmse": a.answer_rmse, "answer_std": a.answer_std,
                  "best_correlation": [float(v) for v in a.best_correlation],
                  "kl": [float(v) for v in a.kl]}
        summary = (f"trained scinet on simulated damped oscillators: held-out answer RMSE {a.answer_rmse:.3f} "
                   f"(answers' SD {a.answer_std:.3f}); " + ", ".join(
                       f"{n}: |r| {float(c):.3f} with neuron {int(i)}"
                       for n, c, i in zip(a.parameter_names, a.best_correlation, a.best_neuron))
                   + "; KL per neuron " + ", ".join(f"{float(k):.3f}" for k in a.kl))
    else:
        result_g = run_groupinn(epochs=epochs, seed=seed, compare_without_cohesion=False)
        model, history = result_g.model, []
        scores = {"accuracy": result_g.accuracy, "baseline_accuracy": result_g.baseline_accuracy, "ari": result_g.ari}
        summary = (f"trained groupinn on simulated fMRI: test accuracy {result_g.accuracy:.3f} (logistic regression "
                   f"{result_g.baseline_accuracy:.3f}); adjusted Rand index of the groups {result_g.ari:.3f}")
    meta = {"data": data, "epochs": epochs, "seed": seed, "history": history, "test": scores}
    return model, meta, summary


# ---- the systems report ---------------------------------------------------------------------

#: Settings of a full run (the acceptance numbers) and of a quick one (a smoke test in seconds).
FULL = {
    "deeptune": {"n_members": 4, "n_stimuli": 3000, "steps": 192},
    "scinet": {"n_train": 20000, "n_test": 2000, "epochs": 120},
    "groupinn": {"n_train": 60, "n_test": 200, "epochs": 600},
}
QUICK = {
    "deeptune": {"n_members": 2, "n_stimuli": 300, "steps": 8},
    "scinet": {"n_train": 500, "n_test": 200, "epochs": 2},
    "groupinn": {"n_train": 16, "n_test": 16, "epochs": 5, "compare_without_cohesion": False},
}
SYSTEMS = ("deeptune", "scinet", "groupinn")


def systems_report(out: str, *, quick: bool = False, seed: int = 0, systems: Sequence[str] = SYSTEMS,
                   progress: bool = True) -> tuple[Any, dict[str, Any]]:
    """Run the representation systems and write their report (one HTML file).

    Returns
    -------
    (path, results)
        The written report and the result of each system by name.
    """
    import time

    from medlens.core.threads import torch_threads
    from medlens.errors import UnknownNameError
    from medlens.report.html import Report
    from medlens.report.systems import deeptune_section, groupinn_section, scinet_section

    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        raise UnknownNameError(f"unknown system {unknown[0]!r}; known: {', '.join(SYSTEMS)}")
    settings = QUICK if quick else FULL
    runners = {"deeptune": (run_deeptune, deeptune_section), "scinet": (run_scinet, scinet_section),
               "groupinn": (run_groupinn, groupinn_section)}
    report = Report("medlens: representation systems",
                    "DeepTune, SciNet and GroupINN on simulated ground truth" + (" (quick run)" if quick else ""))
    results: dict[str, Any] = {}
    with torch_threads(1):  # small models: one thread is fastest on shared cores
        for name in SYSTEMS:
            if name not in systems:
                continue
            run, section = runners[name]
            start = time.perf_counter()
            results[name] = run(seed=seed, **settings[name])
            section(report, results[name])
            if progress:
                print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
    return report.write(out), results
