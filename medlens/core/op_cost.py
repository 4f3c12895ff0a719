"""A fixed per-operator cost model: the seconds one model pass takes on the reference machine.

Counting FLOPs alone does not bound time across architectures: a 3D convolution with 8 output
channels runs at a tenth of the FLOP rate of one with 128, a DenseNet spends much of its pass in
batch norms, concatenations and activations that count no FLOP at all, and every operator pays a
fixed dispatch cost. This module therefore prices each operator of one forward pass from its
shapes alone:

``seconds = sum_ops  flops / rate(op)  +  bytes moved / BANDWIDTH  +  OVERHEAD_S``

* ``rate(op)``: convolutions and matrix products run at ``PEAK_FLOPS[rank]`` times an
  efficiency that grows with the number of output channels per group (the GEMM's ``N``;
  small-channel 3D convolutions are memory-bound in oneDNN), :func:`conv_efficiency`;
* ``bytes moved``: every tensor an operator reads and writes (views move nothing);
* ``OVERHEAD_S``: Python and dispatcher cost per operator.

The constants describe the reference machine of the cost rule (two current x86 CPU cores, torch
at two threads); they were measured once with ``benchmarks/op_cost_calibration.py`` and are
fixed, so a default chosen from them depends only on the model and the input's shape, never on
how busy the machine is. The operators are enumerated on the ``meta`` device when the model
allows it (no arithmetic), else by one real pass of one input.
"""

from __future__ import annotations

import math
import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import flop_registry

# --- the reference machine (two cores, torch at two threads), from benchmarks/op_cost_calibration.py
PEAK_FLOPS = {1: 200e9, 2: 200e9, 3: 120e9}  # dense convolution FLOP/s, by spatial rank
MATMUL_FLOPS = 150e9
REFERENCE_RATE = 100e9  # FLOP/s that turn predicted seconds into "effective FLOPs" (2.5 TFLOP = 25 s)
BANDWIDTH = 8e9  # bytes/s of element-wise and memory-bound operators (reads + writes, allocation included)
OVERHEAD_S = 8e-6  # per operator call
FULL_RATE_WORK = {1: 4000, 2: 4000, 3: 110592}  # N * K (GEMM width x depth) from which convolutions run at peak
MIN_EFFICIENCY = 0.08

_CONV_OPS = {"convolution", "_convolution", "convolution_backward", "cudnn_convolution", "mkldnn_convolution"}
_FREE = {"detach", "alias", "empty", "empty_like", "empty_strided", "zeros", "ones", "full", "lift_fresh",
         "_to_copy", "clone_meta"}


def conv_efficiency(out_channels_per_group: int, depth: int, rank: int) -> float:
    """Share of ``PEAK_FLOPS[rank]`` reached by a convolution whose GEMM is ``N`` output channels
    per group wide and ``K = C_in/groups * prod(kernel)`` deep.

    ``(N K / FULL_RATE_WORK[rank]) ** 0.8`` clamped to ``[MIN_EFFICIENCY, 1]``: measured
    single-thread rates of 3x3x3 convolutions were 70 GFLOP/s at 128 -> 128 channels, 26 at
    64 -> 64, 8.5 at 32 -> 32 and 5.7 at 8 -> 8; 2D convolutions stay near their peak from 32
    channels on.
    """
    full = FULL_RATE_WORK.get(rank, 4000)
    return max(MIN_EFFICIENCY, min(1.0, (out_channels_per_group * depth / full) ** 0.8))


@dataclass
class OpCost:
    """The priced operators of one forward pass of one input."""

    seconds: float = 0.0
    flops: int = 0
    compute_s: float = 0.0
    memory_s: float = 0.0
    overhead_s: float = 0.0
    calls: int = 0
    by_kind: dict[str, float] = field(default_factory=dict)

    def add(self, kind: str, flops: int, compute_s: float, memory_s: float) -> None:
        self.calls += 1
        self.flops += flops
        self.compute_s += compute_s
        self.memory_s += memory_s
        self.overhead_s += OVERHEAD_S
        s = compute_s + memory_s + OVERHEAD_S
        self.seconds += s
        self.by_kind[kind] = self.by_kind.get(kind, 0.0) + s


def _nbytes(t: Any) -> int:
    return t.numel() * t.element_size() if isinstance(t, torch.Tensor) else 0


class _Pricing(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.cost = OpCost()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = func._overloadpacket.__name__
        schema = func._schema
        if name in _FREE or (schema.returns and schema.returns[0].alias_info is not None and not schema.is_mutable):
            return out  # views and allocations move no data
        flops = 0
        counter = flop_registry.get(func._overloadpacket)
        if counter is not None:
            try:
                flops = int(counter(*args, **kwargs, out_val=out))
            except Exception:  # an unusual signature: price it as memory traffic only
                flops = 0
        moved = sum(_nbytes(a) for a in tree_flatten((args, kwargs))[0]) + sum(_nbytes(o) for o in tree_flatten(out)[0])
        if flops:
            if name in _CONV_OPS:
                weight = args[1]
                groups = int(args[8]) if len(args) > 8 else 1
                transposed = bool(args[6]) if len(args) > 6 else False
                per_group = weight.shape[1] if transposed else weight.shape[0] // max(1, groups)
                rank = weight.ndim - 2
                depth = (weight.shape[0] if transposed else weight.shape[1]) * math.prod(weight.shape[2:])
                rate = PEAK_FLOPS.get(rank, MATMUL_FLOPS) * conv_efficiency(per_group, depth, rank)
                kind = f"conv{rank}d"
            else:
                rate, kind = MATMUL_FLOPS, "matmul"
            # a compute-bound operator still streams its operands once
            self.cost.add(kind, flops, flops / rate, 0.25 * moved / BANDWIDTH)
        else:
            self.cost.add(name, 0, 0.0, moved / BANDWIDTH)
        return out


_priced: "weakref.WeakKeyDictionary[nn.Module, dict[tuple, OpCost]]" = weakref.WeakKeyDictionary()


def price(model: nn.Module, x: torch.Tensor) -> OpCost:
    """The priced operators of one forward pass of one input shaped like ``x[0]`` (remembered
    per model and input shape)."""
    key = (tuple(x.shape[1:]), x.dtype)
    try:
        known = _priced.setdefault(model, {})
    except TypeError:
        known = {}
    if key not in known:
        known[key] = _price_on_meta(model, x[:1]) or _price_for_real(model, x[:1])
    return known[key]


def _plain_mode() -> torch.inference_mode:
    """Leave inference mode while pricing: under it a convolution reaches the dispatcher as
    ``aten.conv2d``/``conv3d``, which the FLOP registry does not count (a 3D ResNet's convolutions
    were priced as memory traffic only, 0.1 s instead of 0.87 s per pass)."""
    return torch.inference_mode(False)


def _price_on_meta(model: nn.Module, one: torch.Tensor) -> OpCost | None:
    if isinstance(model, torch.jit.ScriptModule):
        return None
    tensors = {name: torch.empty_like(t, device="meta") for name, t in [*model.named_parameters(), *model.named_buffers()]}
    pricing = _Pricing()
    try:
        with _plain_mode(), pricing, torch.no_grad():
            torch.func.functional_call(model, tensors, (one.to("meta"),))
    except Exception:
        return None
    return pricing.cost


def _price_for_real(model: nn.Module, one: torch.Tensor) -> OpCost:
    from medlens.core.engine import shape_error

    pricing = _Pricing()
    try:
        with _plain_mode():
            normal = one.clone()  # not an inference tensor, which refuses in-place updates out here
            with pricing, torch.no_grad():
                model(normal)
    except RuntimeError as err:
        raise shape_error(one.shape, err) from err
    return pricing.cost


def forward_seconds(model: nn.Module, x: torch.Tensor) -> float:
    """Predicted seconds of one forward pass of one input on the reference machine."""
    return price(model, x).seconds


def effective_flops(model: nn.Module, x: torch.Tensor) -> int:
    """The pass's predicted time in FLOPs at :data:`REFERENCE_RATE`: what the FLOP budget of
    :mod:`medlens.core.cost` compares (2.5 TFLOP = 25 s on the reference machine). A model whose
    operators run at the reference rate costs its counted FLOPs; slower operators cost more."""
    return int(math.ceil(forward_seconds(model, x) * REFERENCE_RATE))
