"""The gate coefficients of an attention-gated network as an attribution map.

Schlemper et al., "Attention gated networks: Learning to leverage salient regions in medical
images", Medical Image Analysis 53, 197-207 (2019): each additive attention gate multiplies a
feature map by coefficients ``alpha`` in [0, 1] that the network computes for itself. They are
read here, not computed: one forward pass (through the engine, chunked by the budget), the
gates' sigmoid outputs captured by hooks that live only inside the ``with`` block, each
``(B, 1, *s_l)`` map upsampled (bi/tri-linearly) to the input grid.

The coefficients do not depend on the class explained (the gates see the features, not the
output): the ``target`` is accepted for the common signature and ignored. Whether they say why
the network decided is an empirical question; ``benchmarks/attention_gates.py`` measures it
against ground-truth masks and by deletion, permutation and uniform replacement.
"""

from __future__ import annotations

from contextlib import ExitStack

import torch
from torch import nn

from medlens.attribution.registry import register
from medlens.core import engine
from medlens.core.engine import Budget
from medlens.core.hooks import capture
from medlens.core.resize import upsample_to
from medlens.core.targets import Target
from medlens.errors import InputError
from medlens.models.attention_gated import gate_modules


@register(
    "attention_gates",
    needs_gradients=False,
    layer_resolution=True,
    summary="the coefficients of the network's own additive attention gates, upsampled to the input",
    reference="Schlemper et al. 2019",
    requires="attention gates",
)
def attention_gates(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    gate: int | str = "mean",
    budget: Budget = Budget(),
) -> torch.Tensor:
    """Attention-gate coefficients upsampled to the input.

    Parameters
    ----------
    model : nn.Module
        A network holding :class:`~medlens.models.attention_gated.AttentionGate` modules
        (``medlens train --arch attention-gated``).
    x : torch.Tensor
        ``(B, C, *spatial)``, 1 to 3 spatial axes.
    target : Target
        Ignored: gate coefficients are the same for every class.
    gate : int or {"mean", "max"}
        One gate (index in definition order; 0 is the finest), or the mean or element-wise
        maximum of all gates after upsampling.
    budget : Budget
        Chunking of the forward passes.

    Returns
    -------
    torch.Tensor
        ``(B, 1, *spatial)`` with values in [0, 1].
    """
    gates = gate_modules(model)
    if isinstance(gate, str):
        if gate not in ("mean", "max"):
            raise InputError(f"gate must be a gate index or 'mean' or 'max', got {gate!r}")
        chosen = list(range(len(gates)))
    else:
        if not -len(gates) <= int(gate) < len(gates):
            raise InputError(f"gate {gate} out of range: the model has {len(gates)} attention gates")
        chosen = [int(gate) % len(gates)]
    maps: list[torch.Tensor] = []
    with ExitStack() as stack:
        records = [stack.enter_context(capture(model, gates[i].alpha)) for i in chosen]

        def consume(start, stop, outputs, grads, aux):
            ups = torch.stack([upsample_to(r.activation.to(x.dtype), x.shape[2:]) for r in records])  # (G, b, 1, *spatial)
            maps.append(ups.amax(0) if gate == "max" else ups.mean(0))

        engine.run(model, len(x), x, mode="forward", consume=consume, budget=budget)
    return torch.cat(maps).clamp(0.0, 1.0)
