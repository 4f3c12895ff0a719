"""GroupINN (section 4 of the reference survey) on simulated fMRI with planted groups, measured
against the planted groups and a logistic baseline. :mod:`medlens.report.systems` turns the
result into a report section.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from medlens.app.systems.base import SystemInfo, SystemResult
from medlens.core.progress import SILENT, Progress
from medlens.core import engine
from medlens.core.random import derive_seed, seeded

__all__ = ["INFO", "GroupINNResult", "run_groupinn", "train_groupinn_on_fmri"]


@dataclass
class GroupINNResult(SystemResult):
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
                 seed: int = 0, progress: Progress = SILENT) -> GroupINNResult:
    """Train GroupINN and the logistic baseline on the same few subjects; score on held-out ones."""
    from medlens.data.synthetic.fmri import block_means, connectivity, simulate_fmri
    from medlens.systems.groupinn import (
        adjusted_rand_index,
        group_relevance,
        logistic_baseline,
        match_groups,
        orthogonality_penalty,
    )

    train = simulate_fmri(n_train, n_groups=n_groups, seed=seed)
    test = simulate_fmri(n_test, n_groups=n_groups, seed=derive_seed(seed, "test set"))
    ctr, cte = connectivity(train.timeseries), connectivity(test.timeseries)
    model, _, _ = train_groupinn_on_fmri(n_groups=n_groups, epochs=epochs, cohesion_weight=cohesion_weight,
                                         weight_decay=weight_decay, seed=seed, data=train)

    def accuracy(m: nn.Module) -> float:
        return float((engine.forward(m, cte).argmax(1) == test.labels).double().mean())

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


#: The registry entry: ``INFO.run(SystemConfig(...), progress)``.
INFO = SystemInfo(
    "groupinn", "representation", "GroupINN on simulated fMRI", run_groupinn,
    full={"n_train": 60, "n_test": 200, "epochs": 600},
    quick={"n_train": 16, "n_test": 16, "epochs": 5, "compare_without_cohesion": False},
)
