"""Is a vision transformer's attention an explanation? Jain and Wallace's tests, on patches.

The questions of :mod:`medlens.evaluation.attention` (Jain and Wallace, "Attention is not
Explanation", NAACL 2019), asked of a transformer, at the resolution of its patch tokens:

1. Agreement: Kendall's tau-b per image (:func:`~medlens.evaluation.attention.kendall_tau`)
   between attention rollout's patch scores and (a) gradient importance (``|dS/dx|`` summed
   over each patch), (b) leave-one-patch-out importance (occlusion with a window and stride of
   one patch: the score drop when the patch is set to the baseline), (c) Chefer's
   gradient-weighted attention relevance.
2. Permutation: in every attention layer the attention paid to the patch tokens is permuted
   over the patches (one random permutation of the key patches per layer, image and draw; the
   class tokens' columns stay; rows still sum to one) and the total variation distance (TVD)
   of the output distribution is recorded, with how often the decision flips.
3. With ground-truth masks: the share of each map's mass inside the mask.

The summary carries the keys :func:`medlens.evaluation.attention.verdict` reads, so the same
plain-language verdict applies.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from medlens.attribution.explain import explain
from medlens.attribution.transformer.attention_maps import capture_attention
from medlens.attribution.transformer.rollout import grid_of
from medlens.attribution.transformer.tokens import TokenGrid
from medlens.core import engine
from medlens.core.checks import evaluation_mode
from medlens.core.engine import Budget
from medlens.core.random import generator
from medlens.core.targets import probabilities, to_target
from medlens.errors import InputError
from medlens.evaluation.attention import kendall_tau, total_variation


def patch_sums(values: torch.Tensor, grid: TokenGrid) -> torch.Tensor:
    """Sum of ``(B, C, *spatial)`` over channels and each patch of ``grid``: ``(B, n_patches)``,
    row-major like the tokens (a side the grid does not divide loses its remainder, like a
    strided patch embedding)."""
    b, spatial = values.shape[0], values.shape[2:]
    sides = [s // g for s, g in zip(spatial, grid.grid)]
    v = values.sum(1)[(slice(None),) + tuple(slice(0, g * p) for g, p in zip(grid.grid, sides))]
    shape = [b]
    for g, p in zip(grid.grid, sides):
        shape += [g, p]
    v = v.reshape(shape)
    return v.sum(dim=tuple(range(2, v.ndim, 2))).reshape(b, -1)


def _permutation(seed: int, image: int, draw: int, layer: int, n: int) -> torch.Tensor:
    return torch.randperm(n, generator=generator(int(seed), "transformer-attention-permutation", image, draw, layer))


def permutation_test(
    model: nn.Module, x: torch.Tensor, *, n_permutations: int = 20, seed: int = 0,
    batch_size: int | None = None, memory_mb: float | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Output change when the attention to patches is permuted in every layer.

    Returns
    -------
    tvd : torch.Tensor
        ``(B, n_permutations)`` total variation distance between the original and the
        permuted output distributions.
    flipped : torch.Tensor
        ``(B, n_permutations)`` bool: the predicted class changed.
    """
    if not isinstance(n_permutations, int) or n_permutations < 1:
        raise InputError(f"n_permutations must be a positive integer, got {n_permutations!r}")
    budget = Budget(batch_size, memory_mb)
    n = n_permutations
    with evaluation_mode(model):
        x = x.to(engine.model_device(model))
        base = probabilities(engine.forward(model, x, budget))
        b = len(x)
        tvd = torch.empty(b, n, dtype=torch.float64)
        flipped = torch.empty(b, n, dtype=torch.bool)
        rows = {"now": torch.arange(0)}

        def permute(layer: int, probs: torch.Tensor) -> torch.Tensor:
            grid = grid_of(model, probs.shape[-1], x)
            out = probs.clone()
            for r, row in enumerate(rows["now"].tolist()):
                order = grid.prefix + _permutation(seed, row // n, row % n, layer, grid.n_patches).to(probs.device)
                out[r, ..., grid.prefix:] = probs[r, ..., order]
            return out

        def build(start: int, stop: int) -> torch.Tensor:
            rows["now"] = torch.arange(start, stop)
            return x[torch.arange(start, stop) // n]

        def consume(start: int, stop: int, out: torch.Tensor, _g, _aux) -> None:
            r = torch.arange(start, stop)
            i, k = r // n, r % n
            p = probabilities(out)
            tvd[i, k] = total_variation(p, base[i]).double().cpu()
            flipped[i, k] = (p.argmax(1) != base[i].argmax(1)).cpu()

        with capture_attention(model, replace=permute) as record:
            engine.run(model, b * n, build, consume=lambda *a: (consume(*a), record.clear()), budget=budget)
    return tvd, flipped


@dataclass(frozen=True)
class TransformerAttentionFaithfulness:
    """Per-image results of :func:`transformer_attention_faithfulness` (``B`` images, ``P`` patches).

    Attributes
    ----------
    rollout, chefer, gradient, leave_one_out : (B, P) patch scores (gradient magnitude summed per
        patch; leave-one-out: occlusion score drop per patch).
    tau_gradient, tau_leave_one_out, tau_chefer : (B,) Kendall tau-b of rollout with each.
    permutation_tvd, permutation_flipped : (B, n_permutations).
    mass_rollout, mass_gradient, mask_share : (B,) share of the map's mass in the mask and the
        share of patches the mask covers; NaN without masks.
    probabilities : (B, K); grid : the token grid.
    """

    rollout: torch.Tensor
    chefer: torch.Tensor
    gradient: torch.Tensor
    leave_one_out: torch.Tensor
    tau_gradient: torch.Tensor
    tau_leave_one_out: torch.Tensor
    tau_chefer: torch.Tensor
    permutation_tvd: torch.Tensor
    permutation_flipped: torch.Tensor
    mass_rollout: torch.Tensor
    mass_gradient: torch.Tensor
    mask_share: torch.Tensor
    probabilities: torch.Tensor
    grid: TokenGrid
    params: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, float | int | None]:
        """Aggregates under the names :func:`medlens.evaluation.attention.verdict` reads."""

        def agg(v: torch.Tensor, how: str) -> float | None:
            v = v[~torch.isnan(v)]
            return (float(v.mean()) if how == "mean" else float(v.median())) if v.numel() else None

        per_image = self.permutation_tvd.median(1).values
        return {
            "n_images": int(len(self.probabilities)),
            "tau_gradient_mean": agg(self.tau_gradient, "mean"),
            "tau_gradient_median": agg(self.tau_gradient, "median"),
            "tau_leave_one_out_mean": agg(self.tau_leave_one_out, "mean"),
            "tau_leave_one_out_median": agg(self.tau_leave_one_out, "median"),
            "tau_chefer_mean": agg(self.tau_chefer, "mean"),
            "permutation_tvd_median": agg(per_image, "median"),
            "permutation_tvd_mean": agg(self.permutation_tvd.mean(1), "mean"),
            "permutation_flip_rate": float(self.permutation_flipped.double().mean()),
            "mass_attention_mean": agg(self.mass_rollout, "mean"),
            "mass_gradient_mean": agg(self.mass_gradient, "mean"),
            "mask_share_mean": agg(self.mask_share, "mean"),
        }


def transformer_attention_faithfulness(
    model: nn.Module, x: torch.Tensor, target: Any = None, *, masks: torch.Tensor | None = None,
    n_permutations: int = 20, seed: int = 0, batch_size: int | None = None, memory_mb: float | None = None,
) -> TransformerAttentionFaithfulness:
    """Jain and Wallace's tests of a vision transformer's attention, per image.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)``.
    target : optional
        What gradient, occlusion and Chefer's relevance explain (default: the predicted class).
    masks : torch.Tensor, optional
        ``(B, 1, *spatial)`` or ``(B, *spatial)`` ground-truth evidence; a patch counts as inside
        when at least half of it is.
    n_permutations, seed : the permutation test's draws.
    """
    budget = Budget(batch_size, memory_mb)
    with evaluation_mode(model):
        x = x.to(engine.model_device(model))
        outputs = engine.forward(model, x, budget)
        tgt = to_target(target, outputs, batch=len(x))
        kw = budget.kwargs()
        roll = explain(model, x, tgt, "attention_rollout", upsample=False, **kw).values
        grid = grid_of_map(model, roll, x)
        rollout = roll.flatten(1)
        chefer = explain(model, x, tgt, "transformer_attribution", upsample=False, **kw).values.flatten(1)
        grad = patch_sums(explain(model, x, tgt, "gradient", abs=True, **kw).values, grid)
        side = [s // g for s, g in zip(x.shape[2:], grid.grid)]
        occluded = explain(model, x, tgt, "occlusion", window=side, stride=side, incremental=False, **kw).values
        loo = patch_sums(occluded, grid) / (math.prod(side) * occluded.shape[1])
        tvd, flipped = permutation_test(model, x, n_permutations=n_permutations, seed=seed, **kw)
    nan = torch.full((len(x),), math.nan, dtype=torch.float64)
    mass_roll, mass_grad, share = nan, nan, nan
    if masks is not None:
        m = masks if masks.ndim == x.ndim else masks[:, None]
        inside = patch_sums(m.to(x.device).float(), grid) / (math.prod(side) * m.shape[1]) >= 0.5
        covered = inside.sum(1).double()

        def mass(v: torch.Tensor) -> torch.Tensor:
            v = v.abs().double()
            return torch.where(covered > 0, (v * inside).sum(1) / v.sum(1).clamp_min(1e-300), nan.to(v.device))

        mass_roll, mass_grad = mass(rollout).cpu(), mass(grad).cpu()
        share = torch.where(covered > 0, covered / grid.n_patches, nan.to(covered.device)).cpu()
    return TransformerAttentionFaithfulness(
        rollout=rollout.cpu(), chefer=chefer.cpu(), gradient=grad.cpu(), leave_one_out=loo.cpu(),
        tau_gradient=kendall_tau(rollout, grad).cpu(), tau_leave_one_out=kendall_tau(rollout, loo).cpu(),
        tau_chefer=kendall_tau(rollout, chefer).cpu(), permutation_tvd=tvd, permutation_flipped=flipped,
        mass_rollout=mass_roll, mass_gradient=mass_grad, mask_share=share,
        probabilities=probabilities(outputs).cpu(), grid=grid,
        params={"n_permutations": n_permutations, "seed": seed},
    )


def grid_of_map(model: nn.Module, patch_map: torch.Tensor, x: torch.Tensor) -> TokenGrid:
    """The patch grid of a patch-resolution map ``(B, 1, *grid)`` (extra tokens play no part here)."""
    return TokenGrid(0, tuple(int(s) for s in patch_map.shape[2:]))
