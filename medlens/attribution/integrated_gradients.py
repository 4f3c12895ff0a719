"""Integrated gradients: Sundararajan, Taly and Yan, "Axiomatic Attribution for Deep
Networks" (ICML 2017).

The attribution of element ``i`` is ``(x_i - x'_i) * integral_0^1 dF(x' + a (x - x'))/dx_i da``
for a baseline ``x'``. The integral is a quadrature over ``n_steps`` points of the straight path;
every point is one gradient evaluation, handed to the engine lazily so that at most one chunk of
interpolated inputs exists at a time (a 96^3 volume with 50 steps stays within the engine's
memory budget instead of materialising all 50 copies). When the model starts with a
convolution, the path through it is exploited exactly (:mod:`medlens.attribution.entry`).

Completeness (the attributions sum to ``F(x) - F(x')``) holds for the exact integral; the
quadrature error is returned per sample as ``extras["convergence_delta"]``.
"""

from __future__ import annotations

import torch
from torch import nn

from medlens.attribution.common import spatial_sum, view_rows
from medlens.core.baselines import BaselineLike, resolve_baseline
from medlens.core.options import check_count
from medlens.attribution.entry import find_entry
from medlens.attribution.incremental import Prepared, short_circuit
from medlens.core import engine
from medlens.core.cost import GRADIENT_PASSES, affordable, chosen
from medlens.core.engine import Budget
from medlens.attribution.registry import register
from medlens.core.targets import Target
from medlens.errors import InputError, UnknownNameError

RULES = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")


def path_nodes(rule: str, n_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Quadrature nodes ``alphas`` in ``[0, 1]`` and their weights, float64 ``(n_steps,)`` each.

    ``gausslegendre`` maps the Gauss-Legendre nodes of ``[-1, 1]`` to ``[0, 1]`` (exact for
    polynomials of degree ``2 n - 1``; Captum's default too). The Riemann rules use ``n`` equal
    steps; ``riemann_trapezoid`` puts ``n`` nodes on ``0, 1/(n-1), ..., 1`` with the end
    weights halved, so its weights sum to one. (Captum's trapezoid uses steps of ``1/n`` on the
    same nodes; its weights sum to ``(n-1)/n``, which scales its attributions by that factor.)
    """
    n = check_count(n_steps, "n_steps")
    if rule == "gausslegendre":
        import numpy as np  # only for the nodes; the attribution itself stays in torch

        nodes, weights = np.polynomial.legendre.leggauss(n)
        return torch.from_numpy(0.5 * (nodes + 1.0)), torch.from_numpy(0.5 * weights)
    steps = torch.arange(n, dtype=torch.float64)
    uniform = torch.full((n,), 1.0 / n, dtype=torch.float64)
    if rule == "riemann_left":
        return steps / n, uniform
    if rule == "riemann_right":
        return (steps + 1) / n, uniform
    if rule == "riemann_middle":
        return (steps + 0.5) / n, uniform
    if rule == "riemann_trapezoid":
        if n < 2:
            raise InputError("the trapezoid rule needs n_steps >= 2")
        weights = torch.full((n,), 1.0 / (n - 1), dtype=torch.float64)
        weights[0] /= 2
        weights[-1] /= 2
        return torch.linspace(0, 1, n, dtype=torch.float64), weights
    raise UnknownNameError(f"unknown integration rule {rule!r}; rules: {', '.join(RULES)}")


@register(
    "integrated_gradients",
    needs_gradients=True,
    summary="path integral of gradients from a baseline to the input (completeness)",
    reference="Sundararajan, Taly and Yan 2017",
)
def integrated_gradients(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    baseline: BaselineLike = "zero",
    n_steps: int | None = None,
    rule: str = "gausslegendre",
    linear_entry: bool = True,
    budget: Budget = Budget(),
) -> tuple[torch.Tensor, dict]:
    """Integrated gradients of the target score along the straight path from a baseline.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)``.
    baseline : {"zero", "blur", "mean"}, float or torch.Tensor
        The reference input ``x'`` (see :func:`medlens.core.baselines.resolve_baseline`);
        a tensor must broadcast to ``x``.
    n_steps : int, optional
        Quadrature points, i.e. gradient evaluations per sample. Default: 50, fewer (at least
        16) for a model whose 50 gradients would cost more than
        :data:`~medlens.core.cost.FLOP_BUDGET` (:func:`~medlens.core.cost.affordable`); the
        chosen count is recorded in the result's ``params``.
    rule : str
        One of :data:`RULES`.
    linear_entry : bool
        When the model reads its input only through a first convolution, use that layer's
        linearity: its output along the path is computed from two evaluations, and the backward
        pass through it runs once instead of once per step (:mod:`medlens.attribution.entry`).
        The result is the same up to floating-point rounding; ``False`` evaluates the full
        model at every step.

    Returns
    -------
    values : torch.Tensor
        ``(B, C, *spatial)``.
    extras : dict
        ``convergence_delta`` ``(B,)``: ``sum(values) - (F(x) - F(x'))`` per sample, the
        quadrature error. It vanishes for models linear along the path; for smooth models the
        Gauss-Legendre rule converges exponentially in ``n_steps``; piecewise-linear (ReLU)
        networks converge more slowly, and a larger ``n_steps`` brings it down.
    """
    extras: dict = {}
    if n_steps is None:
        n_steps = affordable(model, x, passes=GRADIENT_PASSES, low=16, high=50)
        extras = chosen(model, x, {"n_steps": n_steps}, reduced=n_steps < 50)
    alphas, weights = path_nodes(rule, n_steps)
    alphas = alphas.to(dtype=x.dtype, device=x.device)
    weights = weights.to(dtype=x.dtype, device=x.device)
    reference = resolve_baseline(x, baseline)
    difference = x - reference  # (B, C, *spatial)
    b = len(x)
    # one chunk size for every pass: the gradient chunks bound the forward ones too
    size = Budget(batch_size=engine.chunk_size(model, x[:1], b * n_steps, "gradient", budget))

    # F(x) and F(x') for the completeness check, first: the linear-entry check reuses F(x)
    ends_output = engine.forward(model, torch.cat([x, reference]), size)
    entry = find_entry(model, x, ends_output[:1]) if linear_entry else None

    # the first layer's output along the path is affine in alpha: two evaluations give it all
    if entry is not None:
        with torch.inference_mode():
            start_out = entry.forward(reference.contiguous())
            delta_out = entry.forward(x) - start_out
    sums = torch.zeros_like(x) if entry is None else torch.zeros_like(start_out)
    current: list[Prepared | None] = [None]

    def along_path(start_point: torch.Tensor, direction: torch.Tensor, sample: torch.Tensor, step: torch.Tensor):
        """``start + alpha * direction`` for each row, one broadcast per sample (rows are
        sample-major), without gathering copies of the per-sample tensors first."""
        parts = []
        for s in torch.unique_consecutive(sample).tolist():
            scale = view_rows(alphas[step[sample == s]], start_point.ndim)
            parts.append(torch.addcmul(start_point[s : s + 1], scale, direction[s : s + 1]))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def build(start: int, stop: int):
        rows = torch.arange(start, stop, device=x.device)
        sample, step = rows // n_steps, rows % n_steps  # row = sample * n_steps + step
        points = along_path(reference, difference, sample, step)
        if entry is not None:
            layer_out = along_path(start_out, delta_out, sample, step).requires_grad_(True)
            current[0] = Prepared(points, [layer_out])
        return points, (sample, step)

    def consume(start, stop, outputs, grads, aux):
        sample, step = aux  # grads: at the input, or at the entry layer's output
        sums.index_add_(0, sample, grads * view_rows(weights[step], grads.ndim))

    with short_circuit([entry.module] if entry is not None else [], lambda: current[0]):
        engine.run(
            model, b * n_steps, build, mode="gradient", target=target.repeat_each(n_steps),
            consume=consume, budget=size, layer=entry.module if entry is not None else None,
        )
    total = sums if entry is None else entry.input_gradient(x, sums)
    values = total * difference

    both = torch.arange(b, device=x.device).repeat(2)
    ends = target.take(both)(ends_output)
    delta = spatial_sum(values) - (ends[:b] - ends[b:])
    return values, {**extras, "convergence_delta": delta.detach()}
