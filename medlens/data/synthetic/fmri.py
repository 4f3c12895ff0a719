"""Simulated resting-state fMRI with planted groups of brain regions.

The ground truth for GroupINN (Yan, Zhang, Zhuang, Marsh and Koutra, "GroupINN: grouping-based
interpretable neural network for classification of limited, noisy brain data", KDD 2019): each
subject has ``n_regions`` regional BOLD time series; the regions fall into ``n_groups`` planted
functional groups; a binary label (the "cognitive function", e.g. high or low performance)
changes how strongly some groups are coupled, within and between groups.

Generative model, per subject::

    s_g(t)   group signals: AR(1) (BOLD is slow), correlated across groups by C[label]
    x_r(t) = a_{g(r)}[label] * s_{g(r)}(t) + e_r(t)      e_r: AR(1) noise of unit variance

* ``C[label]`` is the identity except the planted between-group couplings of the label;
* ``a_g[label]`` is the within-group loading (how tightly a group's regions move together);
* subject-level noise: every subject's loadings and couplings are jittered (``subject_noise``),
  and only ``n_timepoints`` samples are seen, so the correlation estimates are noisy.

The defaults plant, for class 1 against class 0: groups 0 and 1 coupled (+0.5 correlation of
their signals), groups 2 and 3 anti-coupled (-0.4), and group 4 tighter (loading 1.0 instead
of 0.7). :func:`connectivity` computes the Pearson functional-connectivity matrices the
classifiers see.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from medlens.core.random import generator
from medlens.errors import InputError


@dataclass(frozen=True)
class Plant:
    """What differs between the classes.

    Attributes
    ----------
    couplings : tuple of (int, int, float)
        ``(g, h, rho)``: in class 1 the signals of groups ``g`` and ``h`` have correlation
        ``rho`` (0 in class 0).
    loadings : tuple of (int, float, float)
        ``(g, a0, a1)``: within-group loading of group ``g`` in class 0 and class 1.
    base_loading : float
        Loading of every other group.
    """

    couplings: tuple = ((0, 1, 0.5), (2, 3, -0.4))
    loadings: tuple = ((4, 0.7, 1.0),)
    base_loading: float = 0.8


@dataclass
class FMRISet:
    """Simulated subjects.

    Attributes
    ----------
    timeseries : torch.Tensor
        ``(S, n_regions, n_timepoints)`` float32, each region standardised.
    labels : torch.Tensor
        ``(S,)`` int64 class of each subject (balanced).
    groups : torch.Tensor
        ``(n_regions,)`` int64 planted group of each region.
    plant : Plant
    """

    timeseries: torch.Tensor
    labels: torch.Tensor
    groups: torch.Tensor
    plant: Plant = field(default_factory=Plant)
    class_names: tuple = ("class 0", "class 1")

    def __len__(self) -> int:
        return len(self.labels)


def _ar1(shape: tuple, phi: float, gen: torch.Generator) -> torch.Tensor:
    """Unit-variance AR(1) series along the last axis, ``shape`` float64."""
    e = torch.randn(shape, generator=gen, dtype=torch.float64)
    out = torch.empty_like(e)
    out[..., 0] = e[..., 0]
    c = (1 - phi**2) ** 0.5
    for t in range(1, shape[-1]):
        out[..., t] = phi * out[..., t - 1] + c * e[..., t]
    return out


def planted_groups(n_regions: int, n_groups: int, seed: int = 0) -> torch.Tensor:
    """A random balanced assignment of regions to groups, ``(n_regions,)`` int64 (regions of a
    group are not contiguous, as in an atlas)."""
    if not 1 <= n_groups <= n_regions:
        raise InputError(f"need 1 <= n_groups <= n_regions, got {n_groups} groups for {n_regions} regions")
    gen = generator(seed, "groups")
    labels = torch.arange(n_regions) % n_groups
    return labels[torch.randperm(n_regions, generator=gen)]


def simulate_fmri(
    n_subjects: int, *, n_regions: int = 90, n_groups: int = 5, n_timepoints: int = 150, plant: Plant | None = None,
    subject_noise: float = 0.15, phi: float = 0.5, groups_seed: int = 0, seed: int = 0,
) -> FMRISet:
    """Simulate ``n_subjects`` subjects (half of each class) with planted group connectivity.

    Parameters
    ----------
    n_subjects : int
    n_regions, n_groups, n_timepoints : int
    plant : Plant
        Class differences (:class:`Plant` defaults).
    subject_noise : float
        Standard deviation of each subject's jitter of loadings and couplings.
    phi : float
        AR(1) coefficient of signals and noise (temporal smoothness of BOLD).
    groups_seed : int
        Seeds the planted groups (keep it fixed across train and test sets).
    seed : int
        Seeds the subjects.
    """
    plant = plant or Plant()
    if n_subjects < 2 or n_timepoints < 10:
        raise InputError(f"simulate_fmri needs at least 2 subjects and 10 time points, got {n_subjects}, {n_timepoints}")
    for g, h, rho in plant.couplings:
        if not (0 <= g < n_groups and 0 <= h < n_groups and g != h and abs(rho) < 1):
            raise InputError(f"invalid planted coupling {(g, h, rho)} for {n_groups} groups")
    for g, _, _ in plant.loadings:
        if not 0 <= g < n_groups:
            raise InputError(f"invalid planted loading of group {g} for {n_groups} groups")
    groups = planted_groups(n_regions, n_groups, groups_seed)
    gen = generator(seed, "fmri")
    labels = torch.arange(n_subjects) % 2
    labels = labels[torch.randperm(n_subjects, generator=gen)]
    out = torch.empty(n_subjects, n_regions, n_timepoints, dtype=torch.float64)
    for s in range(n_subjects):
        y = int(labels[s])
        corr = torch.eye(n_groups, dtype=torch.float64)
        for g, h, rho in plant.couplings:
            value = (rho if y == 1 else 0.0) + subject_noise * float(torch.randn((), generator=gen))
            corr[g, h] = corr[h, g] = max(-0.95, min(0.95, value))
        # nearest valid correlation matrix: clip eigenvalues
        evals, evecs = torch.linalg.eigh(corr)
        corr = evecs @ torch.diag(evals.clamp_min(0.05)) @ evecs.T
        d = corr.diagonal().sqrt()
        corr = corr / d[:, None] / d[None, :]
        signals = torch.linalg.cholesky(corr) @ _ar1((n_groups, n_timepoints), phi, gen)  # (G, T)
        loading = torch.full((n_groups,), plant.base_loading, dtype=torch.float64)
        for g, a0, a1 in plant.loadings:
            loading[g] = a1 if y == 1 else a0
        loading = (loading + subject_noise * torch.randn(n_groups, generator=gen, dtype=torch.float64)).clamp_min(0.05)
        x = loading[groups, None] * signals[groups] + _ar1((n_regions, n_timepoints), phi, gen)
        out[s] = (x - x.mean(1, keepdim=True)) / x.std(1, keepdim=True)
    return FMRISet(out.float(), labels.long(), groups.long(), plant)


def connectivity(timeseries: torch.Tensor) -> torch.Tensor:
    """Pearson functional connectivity ``(S, R, R)`` of time series ``(S, R, T)``, zero diagonal."""
    if timeseries.ndim != 3 or timeseries.shape[-1] < 3:
        raise InputError(f"time series must be (subjects, regions, time) with at least 3 time points, got {tuple(timeseries.shape)}")
    x = timeseries.double()
    x = x - x.mean(-1, keepdim=True)
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    c = x @ x.transpose(1, 2)
    c.diagonal(dim1=1, dim2=2).zero_()
    return c.float()


def block_means(conn: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
    """Mean connectivity between (and within, off-diagonal) each pair of groups: ``(S, G, G)``."""
    g = int(groups.max()) + 1
    onehot = torch.nn.functional.one_hot(groups, g).double()  # (R, G)
    sums = onehot.T @ conn.double() @ onehot  # (S, G, G)
    counts = onehot.sum(0)
    pairs = counts[:, None] * counts[None, :] - torch.diag(counts)  # exclude the zero diagonal
    return sums / pairs
