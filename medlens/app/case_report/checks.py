"""The per-case checks of a map, computed (their wording is :mod:`.trust`): deletion against
random maps and against the model-free edge and centre maps (Petsiuk et al. 2018; Samek et al.
2017), and the randomisation test of Adebayo et al. (NeurIPS 2018)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from medlens.core.engine import Budget
from medlens.core.targets import Target
from medlens.errors import InputError
# The deletion check is inconclusive when blurring the whole input lowers the class probability by
# less than MIN_DROP (shared with the leaderboard's verdict): no ranking of regions can then lower it faster.
from medlens.evaluation.faithfulness import MIN_DROP

__all__ = ["ALPHA", "MIN_DROP", "N_RANDOM", "CaseCheck", "case_checks"]

#: Random maps the per-case deletion check compares against: with 19, a map that beats all of
#: them has a one-sided Monte-Carlo rank-test p-value of 1/20 = 0.05, the largest that still
#: counts as evidence (:data:`ALPHA`); with fewer the check could not fail a random map.
N_RANDOM = 19
#: The level of the per-case rank test: "supported" needs p <= ALPHA.
ALPHA = 0.05


@dataclass(frozen=True)
class CaseCheck:
    """Per-case trust checks of one method's map.

    Attributes
    ----------
    method : str
    deletion_auc : float
        Area under the class probability as the map's most important regions are blurred
        away (lower: the map found what the model uses).
    random_auc : np.ndarray
        ``(N_RANDOM,)`` the same for random maps.
    edge_auc, centre_auc : float
        The same for the model-free edge and centre maps.
    randomisation_rho : float
        Spearman correlation between the map and the map of a randomised copy of the model
        (near 1: the map ignores the model).
    deletion_drop : float
        How far the class probability falls when the whole input is blurred (the end of every
        deletion curve). Below :data:`MIN_DROP` the deletion check cannot tell maps apart.
    """

    method: str
    deletion_auc: float
    random_auc: np.ndarray
    edge_auc: float
    centre_auc: float
    randomisation_rho: float
    deletion_drop: float = 1.0

    @property
    def deletion_p(self) -> float:
        """One-sided Monte-Carlo rank-test p-value of "the map removes evidence faster than a random
        map": ``(1 + #{random AUC <= this AUC}) / (N + 1)`` (Davison & Hinkley 1997, ch. 4); its
        smallest possible value is ``1 / (N + 1)``."""
        return (1 + int((np.asarray(self.random_auc) <= self.deletion_auc).sum())) / (len(self.random_auc) + 1)


# --------------------------------------------------------------------------------------------
# Calibration
# --------------------------------------------------------------------------------------------


def case_checks(
    model: nn.Module,
    x: torch.Tensor,
    target: int,
    attributions: dict[str, torch.Tensor],
    *,
    method_options: dict[str, dict] | None = None,
    seed: int = 0,
    budget: Budget = Budget(),
    steps: int = 20,
) -> list[CaseCheck]:
    """Deletion and randomisation checks of each method's map on one case.

    Parameters
    ----------
    model : nn.Module
    x : torch.Tensor
        ``(1, C, *spatial)`` the case.
    target : int
        The explained class.
    attributions : dict of str to torch.Tensor
        ``{method: (1, C', *s')}`` the maps to check.
    method_options : dict, optional
        ``{method: options}`` to re-explain the randomised model with.
    seed : int
        Seeds the random maps and the randomised model.
    steps : int
        Deletion steps.

    Returns
    -------
    list of CaseCheck
        The metrics are those of the leaderboard (``deletion_auc``, ``randomisation_spearman``),
        so a case's numbers read like the leaderboard's.
    """
    from medlens.evaluation.baselines import baseline_attribution
    from medlens.evaluation.explainers import explainer_for
    from medlens.evaluation.registry import EvalBatch, get_metric
    from medlens.evaluation.sanity import randomised_copy

    if x.ndim < 3 or len(x) != 1:
        raise InputError(f"case checks take one case (1, C, *spatial), got shape {tuple(x.shape)}")
    deletion = get_metric("deletion_auc").fn
    spatial = x.shape[2:]
    side = max(1, round(max(spatial) / 16))  # the metric's "auto" patch
    steps = min(steps, math.prod(math.ceil(s / side) for s in spatial))
    rho_metric = get_metric("randomisation_spearman").fn
    ids = torch.arange(N_RANDOM)
    xr = x.expand(N_RANDOM, *x.shape[1:])
    t = Target(torch.full((N_RANDOM,), int(target), dtype=torch.long))

    def noop(_m, _x, _t):  # baselines are never re-explained
        raise AssertionError("not re-explained")

    def auc(xs: torch.Tensor, maps: torch.Tensor, tgt: Target) -> tuple[np.ndarray, np.ndarray]:
        batch = EvalBatch(model=model, x=xs, target=tgt, attribution=maps, explainer=noop,
                          sample_ids=torch.arange(len(xs)), seed=seed, budget=budget)
        values, extras = deletion(batch, steps=steps)
        return values.numpy(), extras["curve"].numpy()

    random_auc, curves = auc(xr, baseline_attribution("random", xr, seed=seed, sample_ids=ids), t)
    drop = float(curves[:, 0].mean() - curves[:, -1].mean())
    x2, t2 = x.expand(2, *x.shape[1:]), Target(torch.full((2,), int(target), dtype=torch.long))
    free = torch.cat([baseline_attribution("edge", x), baseline_attribution("centre", x)])
    (edge_auc, centre_auc), _ = auc(x2, free, t2)
    randomised = randomised_copy(model, seed=seed)
    t1 = Target(torch.tensor([int(target)]))
    checks = []
    for method, attribution in attributions.items():
        explainer = explainer_for(method, budget=budget, **(method_options or {}).get(method, {}))
        rand_attr = explainer(randomised, x, t1)
        batch = EvalBatch(model=model, x=x, target=t1, attribution=attribution, explainer=explainer,
                          sample_ids=torch.tensor([0]), randomised_attribution=rand_attr, seed=seed, budget=budget)
        checks.append(CaseCheck(
            method=method,
            deletion_auc=float(deletion(batch, steps=steps)[0][0]),
            random_auc=random_auc,
            edge_auc=float(edge_auc),
            centre_auc=float(centre_auc),
            randomisation_rho=float(rho_metric(batch)[0]),
            deletion_drop=drop,
        ))
    return checks


