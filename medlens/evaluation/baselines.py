"""Baseline "explanations" that every metric also scores, so numbers have something to beat.

None of them looks at the model:

* ``random``: independent uniform noise per position (seeded per sample, so a sample's map does
  not depend on the batch it was computed in);
* ``centre``: a centre prior, highest at the middle of the input and falling linearly to the
  corners (lesions, organs and signal peaks are often central; a method that only finds the
  centre has not found much);
* ``edge``: an edge detector, the gradient magnitude of the lightly smoothed input (maps that
  mostly trace edges look convincing but ignore the model; Adebayo et al. 2018 show that some
  methods behave like it);
* ``input``: the input itself (used by the sanity-check tests; an explanation that *is* the
  image must fail the randomisation check).

Every baseline has the signature ``fn(x, *, seed=0, sample_ids=None) -> (B, 1, *spatial)``.
"""

from __future__ import annotations

from typing import Callable

import torch

from medlens.core.registry import Registry
from medlens.core.blur import gaussian_blur
from medlens.core.random import generator

__all__ = ["BASELINES", "BASELINE_MAPS", "baseline_attribution", "centre_attribution", "edge_attribution", "input_attribution", "random_attribution"]

Baseline = Callable[..., torch.Tensor]


def _ids(x: torch.Tensor, sample_ids: torch.Tensor | None) -> list[int]:
    return list(range(len(x))) if sample_ids is None else [int(i) for i in sample_ids]


def random_attribution(x: torch.Tensor, *, seed: int = 0, sample_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Uniform noise ``(B, 1, *spatial)``; row ``i`` is seeded by ``(seed, sample_ids[i])``."""
    b, _c, *spatial = x.shape
    rows = []
    for sid in _ids(x, sample_ids):
        gen = generator(int(seed), "random-map", int(sid))
        rows.append(torch.rand((1, *spatial), generator=gen, dtype=torch.float64))
    return torch.stack(rows).to(device=x.device, dtype=x.dtype if x.is_floating_point() else torch.float32)


def centre_attribution(x: torch.Tensor, *, seed: int = 0, sample_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Centre prior ``(B, 1, *spatial)``: 1 at the centre, 0 at the farthest corner."""
    b, _c, *spatial = x.shape
    axes = torch.meshgrid(
        *[(torch.arange(n, dtype=torch.float64) - (n - 1) / 2) / max(n / 2, 1) for n in spatial], indexing="ij"
    )
    dist = torch.sqrt(sum(a**2 for a in axes))
    prior = 1 - dist / dist.max().clamp(min=1e-12)
    return prior.expand(b, 1, *spatial).to(device=x.device, dtype=x.dtype).clone()


def edge_attribution(x: torch.Tensor, *, seed: int = 0, sample_ids: torch.Tensor | None = None) -> torch.Tensor:
    """Edge map ``(B, 1, *spatial)``: norm of the central-difference gradient of the input
    smoothed with a Gaussian of sigma 1, summed over channels."""
    smooth = gaussian_blur(x.to(torch.float64), 1.0, mode="nearest")
    total = torch.zeros_like(smooth[:, :1])
    for axis in range(2, x.ndim):
        total = total + torch.gradient(smooth, dim=axis)[0].pow(2).sum(1, keepdim=True)
    return total.sqrt().to(x.dtype)


def input_attribution(x: torch.Tensor, *, seed: int = 0, sample_ids: torch.Tensor | None = None) -> torch.Tensor:
    """The input itself, ``(B, C, *spatial)``."""
    return x.detach().clone()


#: Model-free maps, by name: what a method must beat to be worth showing.
BASELINE_MAPS: Registry[Baseline] = Registry("baseline map")
for _name, _fn in (("random", random_attribution), ("centre", centre_attribution),
                   ("edge", edge_attribution), ("input", input_attribution)):
    BASELINE_MAPS.add(_name, _fn)

#: The baseline maps the leaderboard scores by default.
BASELINES: tuple[str, ...] = ("random", "centre", "edge")


def baseline_attribution(name: str, x: torch.Tensor, *, seed: int = 0, sample_ids: torch.Tensor | None = None) -> torch.Tensor:
    """The baseline map ``name`` (``random``, ``centre``, ``edge`` or ``input``) for inputs ``x``."""
    return BASELINE_MAPS.get(name)(x, seed=seed, sample_ids=sample_ids)
