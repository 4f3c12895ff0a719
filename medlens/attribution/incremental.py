"""Incremental inference for occlusion: recompute only what a window changes.

Nakandala, Kumar and Papakonstantinou, "Incremental and Approximate Inference for Faster
Occlusion-based Deep CNN Explanations" (SIGMOD 2019): occluding a small window changes the
output of a convolution only in the window grown by the kernel, and of the next local layer only
in that region grown again, and so on. For the chain of local layers at the start of a CNN
(convolution, eval-mode batch norm, element-wise activations, pooling), each occluded input's
layer outputs are therefore the unoccluded outputs with a small patch recomputed: on a 96^3
volume with a 24^3 window the early full-resolution layers, which dominate the cost of a 3D CNN,
shrink to a few percent of their work.

How it stays exact and safe:

* a probe pass on the unoccluded inputs checks that the chain is a pipe: the first module
  receives the model input itself, each next module receives the previous module's output
  (the very tensor), every module is called once, and each is of a supported kind and mode;
* during the run each chain module's ``forward`` is short-circuited, inside a context manager
  that restores it in a ``finally`` block, to return the prepared output, but only when it
  receives the exact tensor prepared for it: any other call computes normally;
* only the last chain layer's output is materialised (the unoccluded output with the patch
  written in); the intermediate layers return NaN placeholders, after a check on the first
  sample that nothing but the chain reads them (the model's output is unchanged with the
  placeholders). If something else does (a skip connection), every chain layer returns its
  full output instead, which is exact for any consumer but moves more memory;
* the chain stops where a window's region of change would cover more than half of a layer;
  and small inputs, whose full forward pass is cheaper than the bookkeeping, are evaluated in
  full (decided from the counted cost of each path, :func:`counted_costs`, never from a timing).

Nothing else changes: the engine still evaluates the model on the occluded inputs chunk by
chunk, and the layers after the chain run as usual.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medlens.core import engine
from medlens.core import layers as by_rank
from medlens.core.engine import Budget
from medlens.core.hooks import CONV_TYPES, on_leaf_calls

Region = list[tuple[int, int]]  # [start, stop) per spatial dimension

_ELEMENTWISE = (
    nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Softplus, nn.Tanh, nn.Sigmoid, nn.Hardswish, nn.Hardtanh, nn.Hardsigmoid,
)
MAX_CHANGED_FRACTION = 0.5
# Python bookkeeping per occluded input and chain layer (slicing, padding, a small layer call),
# measured on the reference CNNs: on inputs whose full forward pass costs less than about twice
# this per layer (28x28 images), evaluating in full is faster.
BOOKKEEPING_S = 1e-4


@dataclass
class Level:
    """One layer of the incremental chain.

    ``geometry`` is ``(kernel, stride, padding, dilation)`` per spatial dim for local layers,
    ``None`` for element-wise ones; ``base`` holds the layer's outputs for the unoccluded
    inputs, ``(B, C_l, *spatial_l)``.
    """

    module: nn.Module
    compute: Callable[[torch.Tensor], torch.Tensor]
    geometry: tuple[tuple[int, ...], ...] | None
    in_size: tuple[int, ...]
    out_size: tuple[int, ...]
    base: torch.Tensor | None = None


def _tuple(value: Any, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * n


def _local_layer(module: nn.Module, n: int) -> tuple[Callable, tuple] | None:
    """(patch function with no padding, geometry) of a supported local layer, else None."""
    if isinstance(module, CONV_TYPES):
        if module.padding_mode != "zeros":
            return None
        k, s, d = _tuple(module.kernel_size, n), _tuple(module.stride, n), _tuple(module.dilation, n)
        if module.padding == "valid":
            p = (0,) * n
        elif module.padding == "same":
            p = tuple(di * (ki - 1) // 2 for ki, di in zip(k, d))  # torch pads the extra on the right
        else:
            p = _tuple(module.padding, n)

        def conv(patch, m=module):
            return by_rank.conv_fn(n)(patch, m.weight, m.bias, m.stride, 0, m.dilation, m.groups)

        return conv, (k, s, p, d)
    if isinstance(module, by_rank.MAX_POOL_TYPES + by_rank.AVG_POOL_TYPES):
        if module.ceil_mode or any(_tuple(module.padding, n)):
            return None
        k = _tuple(module.kernel_size, n)
        s = _tuple(module.stride if module.stride is not None else module.kernel_size, n)
        if isinstance(module, by_rank.MAX_POOL_TYPES):
            if module.return_indices:
                return None
            d = _tuple(module.dilation, n)
            return (lambda patch, k=k, s=s, d=d: by_rank.max_pool_fn(n)(patch, k, s, 0, d)), (k, s, (0,) * n, d)
        if getattr(module, "divisor_override", None) is not None:
            return None
        return (lambda patch, k=k, s=s: by_rank.avg_pool_fn(n)(patch, k, s, 0)), (k, s, (0,) * n, (1,) * n)
    return None


def _elementwise(module: nn.Module) -> bool:
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        # eval mode with running statistics: a per-channel affine map
        return not module.training and module.running_mean is not None
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return not module.training
    return isinstance(module, _ELEMENTWISE)


def grow(level: Level, region: Region) -> Region:
    """The output region a change in ``region`` of the layer's input can reach."""
    if level.geometry is None:
        return list(region)
    out = []
    for (a, b), (k, s, p, d), n_out in zip(region, zip(*level.geometry), level.out_size):
        lo = max(0, math.ceil((a + p - d * (k - 1)) / s))
        hi = min(n_out, (b - 1 + p) // s + 1)
        out.append((lo, max(lo, hi)))
    return out


def _span(level: Level, region: Region) -> list[tuple[int, int]]:
    """Input span ``[lo, hi)`` per dim (unclipped: may reach into the padding) of an output region."""
    if level.geometry is None:
        return list(region)
    return [
        (a * s - p, (b - 1) * s - p + d * (k - 1) + 1)
        for (a, b), (k, s, p, d) in zip(region, zip(*level.geometry))
    ]


def _layer_patch(
    level: Level, full: torch.Tensor | None, base: torch.Tensor, changed: torch.Tensor | None,
    changed_region: Region | None, region: Region,
) -> torch.Tensor:
    """The layer's output over ``region`` ``(1, C_out, *sizes)``.

    The layer's input is ``full`` when it is materialised (the occluded input for the first
    layer), otherwise the unoccluded input ``base`` ``(1, C, *in_size)`` with ``changed`` (the
    previous layer's patch over ``changed_region``) written in.
    """
    span = _span(level, region)
    clipped = [slice(max(lo, 0), min(hi, n)) for (lo, hi), n in zip(span, level.in_size)]
    index = (slice(None), slice(None), *clipped)
    if full is not None:
        patch = full[index]
    else:
        patch = base[index].clone()
        inside, source = [], []
        for c, (a, b) in zip(clipped, changed_region):
            lo, hi = max(c.start, a), min(c.stop, b)
            inside.append(slice(lo - c.start, max(lo, hi) - c.start))
            source.append(slice(lo - a, max(lo, hi) - a))
        patch[(slice(None), slice(None), *inside)] = changed[(slice(None), slice(None), *source)]
    pads = [v for (lo, hi), n in reversed(list(zip(span, level.in_size))) for v in (max(0, -lo), max(0, hi - n))]
    if any(pads):
        patch = F.pad(patch, pads)  # the layer's own zero padding at the borders
    return level.compute(patch)


@dataclass
class Chain:
    """The incremental chain of a model for one input batch.

    ``lean``: only the last layer's output is materialised (nothing else reads the others).
    """

    levels: list[Level]
    lean: bool


def plan(model: nn.Module, x: torch.Tensor, window: Sequence[int], budget: Budget) -> Chain | None:
    """The incremental chain for occluding windows of size ``window`` on ``x``, or ``None``.

    One forward pass of ``x`` (through the engine) checks the chain and records each of its
    layers' outputs for the unoccluded inputs; one more pass of the first sample, with NaN
    placeholders for the intermediate outputs, checks that nothing else reads them. A
    TorchScript model has no Python layers to short-circuit: ``None``.
    """
    if isinstance(model, torch.jit.ScriptModule):
        return None
    n = x.ndim - 2
    levels: list[Level] = []
    built: list[torch.Tensor] = []
    bases: list[list[torch.Tensor]] = []  # per level, the outputs of each chunk
    first_output: list[torch.Tensor] = []
    checked = False

    def build(start, stop):
        log.clear()  # forget any earlier pass (the chunk-size probe)
        built.append(x[start:stop])
        return built[-1]

    def consume(start, stop, outputs, grads, aux):
        nonlocal checked
        chunk_log = list(log)
        log.clear()
        if not checked:
            # the chain must start at the model input itself
            starts_at_input = bool(chunk_log) and len(chunk_log[0][1]) == 1 and chunk_log[0][1][0] is built[-1]
            levels.extend(_chain(chunk_log, n, window) if starts_at_input else [])
            bases.extend([] for _ in levels)
            first_output.append(outputs[:1].clone())
            checked = True
        outputs_by_module = {id(module): output for module, _, output in chunk_log}
        for level, chunks in zip(levels, bases):
            chunks.append(outputs_by_module[id(level.module)])

    size = engine.chunk_size(model, x[:1], len(x), "forward", budget)
    log: list[tuple[nn.Module, Any, Any]] = []  # (module, inputs, output) of every leaf call, in order
    with on_leaf_calls(model, lambda module, inputs, output: log.append((module, inputs, output))):
        engine.run(model, len(x), build, consume=consume, budget=Budget(batch_size=size))
    if not any(level.geometry is not None for level in levels):
        return None  # nothing local to save
    for level, chunks in zip(levels, bases):
        level.base = torch.cat(chunks)
    plain_s, incremental_s = counted_costs(levels, x, window)
    if incremental_s >= plain_s:
        return None  # the per-window bookkeeping would cost more than it saves (counted, never timed)

    # Does anything but the chain read the intermediate outputs? Feed NaNs and see.
    probe = Prepared(x[:1], [_placeholder(level.base[:1]) for level in levels[:-1]] + [levels[-1].base[:1]])
    with short_circuit([level.module for level in levels], lambda: probe) as hits:
        output = engine.run(
            model, 1, lambda start, stop: probe.inputs, budget=Budget(batch_size=1), finite_outputs=False
        ).outputs
    if hits[0] != len(levels):
        return None  # the chain was not followed end to end
    # (batch sizes differ between the two passes, so allow rounding; a NaN read is no rounding)
    lean = bool(torch.isfinite(output).all()) and torch.allclose(output, first_output[0], rtol=1e-4, atol=1e-6)
    return Chain(levels, lean)


def counted_costs(levels: list[Level], x: torch.Tensor, window: Sequence[int]) -> tuple[float, float]:
    """Predicted seconds per occluded input of the chain's layers evaluated in full (plain path)
    and incrementally (each layer on the region a centred window changes, plus
    :data:`BOOKKEEPING_S` per layer), from the fixed per-operator cost model
    (:mod:`medlens.core.op_cost`): counted from the shapes, so the choice does not depend on how
    busy the machine is. The layers after the chain cost the same on both paths."""
    from medlens.core.op_cost import price

    plain = incremental = 0.0
    channels = x.shape[1]
    region: Region = [(max(0, (n - w) // 2), max(0, (n - w) // 2) + w) for n, w in zip(x.shape[2:], window)]
    for level in levels:
        region = grow(level, region)
        seconds = price(level.module, torch.empty((1, channels, *level.in_size), dtype=x.dtype, device="meta")).seconds
        share = math.prod(b - a for a, b in region) / max(1, math.prod(level.out_size))
        plain += seconds
        incremental += seconds * share + BOOKKEEPING_S
        channels = level.base.shape[1] if level.base is not None else channels
    return plain, incremental


def _placeholder(like: torch.Tensor, n: int = 1) -> torch.Tensor:
    """A NaN tensor shaped like ``like`` for ``n`` rows, without allocating it (a broadcast view)."""
    return torch.full((), float("nan"), dtype=like.dtype, device=like.device).expand(n, *like.shape[1:])


def _chain(log: list[tuple[nn.Module, Any, Any]], n: int, window: Sequence[int]) -> list[Level]:
    counts: dict[int, int] = {}
    for module, _, _ in log:
        counts[id(module)] = counts.get(id(module), 0) + 1
    levels: list[Level] = []
    if not log:
        return levels
    first_input = log[0][1][0] if log[0][1] else None
    if not isinstance(first_input, torch.Tensor) or first_input.ndim != n + 2:
        return levels
    expected = first_input
    region: Region = [(max(0, (size - w) // 2), max(0, (size - w) // 2) + w) for size, w in zip(first_input.shape[2:], window)]
    for module, inputs, output in log:
        if (
            len(inputs) != 1 or inputs[0] is not expected or counts[id(module)] != 1
            or not isinstance(output, torch.Tensor) or output.ndim != n + 2 or "forward" in vars(module)
        ):
            break
        local = _local_layer(module, n)
        if local is None and not _elementwise(module):
            break
        compute, geometry = local if local is not None else (module.forward, None)
        level = Level(module, compute, geometry, tuple(inputs[0].shape[2:]), tuple(output.shape[2:]))
        region = grow(level, region)
        changed = math.prod(b - a for a, b in region) / max(1, math.prod(level.out_size))
        if changed > MAX_CHANGED_FRACTION:
            break
        levels.append(level)
        expected = output
    return levels


class Prepared:
    """The chain's outputs for one chunk of occluded inputs, and the inputs they answer."""

    def __init__(self, inputs: torch.Tensor, outputs: list[torch.Tensor]) -> None:
        self.inputs = inputs
        self.outputs = outputs


def prepare(chain: Chain, inputs: torch.Tensor, samples: torch.Tensor, regions: list[Region | None]) -> Prepared:
    """Each chain layer's outputs for a chunk of occluded inputs ``(n, C, *spatial)``.

    ``samples`` ``(n,)`` names the unoccluded sample of each row; ``regions`` its occluded
    window (spatial ``[start, stop)`` per dim), ``None`` for an unoccluded row.
    """
    levels = chain.levels
    last = len(levels) - 1
    # materialised outputs: every layer's, or only the last one's
    fulls = [
        level.base[samples] if (i == last or not chain.lean) else None  # a copy per row
        for i, level in enumerate(levels)
    ]
    for row, region in enumerate(regions):
        if region is None:
            continue
        sample = int(samples[row])
        changed, changed_region = None, None
        for i, level in enumerate(levels):
            region = grow(level, region)
            if any(a >= b for a, b in region):
                break  # the change vanished (a window in what a pooling drops): base from here
            if i == 0:
                full, base = inputs[row : row + 1], None
            else:
                full = fulls[i - 1][row : row + 1] if fulls[i - 1] is not None else None
                base = levels[i - 1].base[sample : sample + 1]
            changed = _layer_patch(level, full, base, changed, changed_region, region)
            changed_region = region
            if fulls[i] is not None:
                fulls[i][(row, slice(None), *(slice(a, b) for a, b in region))] = changed[0]
    outputs = [
        full if full is not None else _placeholder(level.base, len(inputs))
        for full, level in zip(fulls, levels)
    ]
    return Prepared(inputs, outputs)


def _same_tensor(a: Any, b: torch.Tensor) -> bool:
    """``a`` is ``b`` or a detached alias of it (the engine detaches inputs in gradient mode)."""
    return isinstance(a, torch.Tensor) and (a is b or (
        a.data_ptr() == b.data_ptr() and a.shape == b.shape and a.stride() == b.stride() and a.dtype == b.dtype
    ))


@contextmanager
def short_circuit(modules: Sequence[nn.Module], current: Callable[[], Prepared | None]) -> Iterator[list[int]]:
    """While the block runs, the chain's modules return the prepared outputs of ``current()``.

    A module short-circuits only when called with the tensor prepared as its input (the
    chunk's inputs for the first module, the previous module's prepared output after that);
    otherwise it computes normally. The original ``forward`` is restored in ``finally``.
    Yields a one-element list counting the short-circuited calls.
    """
    swapped: list[nn.Module] = []
    hits = [0]

    def make(index: int, module: nn.Module):
        original = type(module).forward.__get__(module)

        def forward(*args, **kwargs):
            prepared = current()
            if prepared is not None and len(args) == 1 and not kwargs:
                expected = prepared.inputs if index == 0 else prepared.outputs[index - 1]
                if _same_tensor(args[0], expected):
                    hits[0] += 1
                    return prepared.outputs[index]
            return original(*args, **kwargs)

        return forward

    try:
        for index, module in enumerate(modules):
            module.forward = make(index, module)
            swapped.append(module)
        yield hits
    finally:
        for module in swapped:
            vars(module).pop("forward", None)
