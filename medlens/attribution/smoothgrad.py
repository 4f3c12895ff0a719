"""SmoothGrad: Smilkov, Thorat, Kim, Viegas and Wattenberg, "SmoothGrad: removing noise by
adding noise" (2017), and its squared and variance (VarGrad, Adebayo et al. 2018) variants.

SmoothGrad wraps any registered gradient method by name (``base="gradient"``,
``"grad_x_input"``, ``"integrated_gradients"``, ...): it calls that method's function on
Gaussian-noised copies of the input, one engine chunk of copies at a time, and averages.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from medlens.core.options import check_count, check_fraction
from medlens.core.random import row_seeds
from medlens.core import engine
from medlens.core.cost import GRADIENT_PASSES, affordable, chosen
from medlens.core.engine import Budget
from medlens.attribution.registry import method_call_options, get_method, register
from medlens.core.targets import Target
from medlens.errors import InputError, UnknownNameError

VARIANTS = ("mean", "squared", "variance")


def noise_sample(shape: torch.Size, seed: int, like: torch.Tensor) -> torch.Tensor:
    """Standard normal noise ``shape`` drawn from its own generator seeded with ``seed``."""
    gen = torch.Generator(device=like.device).manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=like.dtype, device=like.device)


def _base_method(base: str, base_options: dict[str, Any] | None):
    if base == "smoothgrad":
        raise InputError("smoothgrad cannot wrap itself; choose a gradient method as base")
    info = get_method(base)
    if not info.needs_gradients:
        raise InputError(f"smoothgrad wraps gradient methods; {base!r} does not use gradients")
    return info.fn, method_call_options(base, base_options)


@register(
    "smoothgrad",
    needs_gradients=True,
    random=True,
    summary="average of a gradient method over noisy copies of the input",
    reference="Smilkov et al. 2017",
)
def smoothgrad(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    base: str = "gradient",
    n_samples: int | None = None,
    noise: float = 0.15,
    variant: str = "mean",
    seed: int = 0,
    base_options: dict | None = None,
    budget: Budget = Budget(),
) -> tuple[torch.Tensor, dict]:
    """Average a gradient method over ``n_samples`` noisy copies of each input.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)``.
    base : str
        Registered gradient method to smooth (its function is called, not a copy of it).
    n_samples : int, optional
        Noisy copies per sample. Default: 50 (the paper finds little gain beyond), fewer (at
        least 8) for a model whose 50 gradients would cost more than
        :data:`~medlens.core.cost.FLOP_BUDGET`; the chosen count is recorded in ``params``.
    noise : float
        Standard deviation of the Gaussian noise as a fraction of each sample's value range
        ``max(x) - min(x)`` (the paper recommends 10-20 %). ``0`` disables the noise.
    variant : {"mean", "squared", "variance"}
        ``mean``: SmoothGrad; ``squared``: mean of squared maps (SmoothGrad-Squared, Hooker
        et al. 2019); ``variance``: their variance (VarGrad, Adebayo et al. 2018).
    seed : int
        Copy ``k`` uses noise from its own generator derived from ``seed``, so the result does
        not depend on the chunk size nor on the other samples in the batch.
    base_options : dict, optional
        Options for the base method, e.g. ``{"abs": True}``.

    Returns
    -------
    values : torch.Tensor
        The base method's map shape, ``(B, C, *spatial)`` for input-space methods.
    extras : dict
        Empty, or what :func:`medlens.core.cost.chosen` records when ``n_samples`` was chosen.
    """
    fn, options = _base_method(base, base_options)
    extras: dict = {}
    if n_samples is None:
        n_samples = affordable(model, x, passes=GRADIENT_PASSES, low=8, high=50)
        extras = chosen(model, x, {"n_samples": n_samples}, reduced=n_samples < 50)
    n = check_count(n_samples, "n_samples")
    level = check_fraction(noise, "noise", low=0.0, high=10.0, open_low=False)
    if variant not in VARIANTS:
        raise UnknownNameError(f"unknown smoothgrad variant {variant!r}; variants: {', '.join(VARIANTS)}")
    seeds = row_seeds(seed, n)
    dims = tuple(range(1, x.ndim))
    sigma = level * (x.amax(dim=dims, keepdim=True) - x.amin(dim=dims, keepdim=True))  # (B, 1, ...)

    total_rows = len(x) * n
    # one chunk of noisy copies at a time; the base method gets exactly that chunk size
    size = engine.chunk_size(model, x[:1], total_rows, "gradient", budget)
    chunk_budget = Budget(batch_size=size)
    mean = squares = None
    for start in range(0, total_rows, size):
        rows = torch.arange(start, min(start + size, total_rows), device=x.device)
        sample, copy = rows // n, rows % n  # row = sample * n_samples + copy
        noisy = x[sample]
        if level > 0:
            noisy = noisy + sigma[sample] * torch.stack(
                [noise_sample(x.shape[1:], seeds[int(k)], x) for k in copy]
            )
        result = fn(model, noisy, target.take(sample), budget=chunk_budget, **options)
        values = result[0] if isinstance(result, tuple) else result
        if mean is None:
            mean = values.new_zeros((len(x),) + values.shape[1:])
            squares = torch.zeros_like(mean) if variant != "mean" else None
        mean.index_add_(0, sample, values)
        if squares is not None:
            squares.index_add_(0, sample, values * values)
    mean = mean / n
    if variant == "mean":
        return mean, extras
    squares = squares / n
    if variant == "squared":
        return squares, extras
    return squares - mean * mean, extras
