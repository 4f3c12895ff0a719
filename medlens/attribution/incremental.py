"""Incremental inference for occlusion: recompute only what a window changes.

Nakandala, Kumar and Papakonstantinou, "Incremental and Approximate Inference for Faster
Occlusion-based Deep CNN Explanations" (SIGMOD 2019): occluding a small window changes the
output of a convolution only in the window grown by the kernel, and of the next local layer only
in that region grown again, and so on. For the chain of local layers at the start of a CNN
(convolution, eval-mode batch norm, element-wise activations, pooling, padded max pooling, and
blocks made only of such layers, e.g. residual blocks, taken as single units with their composed
geometry: :mod:`medlens.attribution.local_units`), each occluded input's
layer outputs are therefore the unoccluded outputs with a small patch recomputed: on a 96^3
volume with a 24^3 window the early full-resolution layers, which dominate the cost of a 3D CNN,
shrink to a few percent of their work.

How it stays exact and safe:

* a probe pass on the unoccluded inputs checks that the chain is a pipe: each module after the
  first receives the previous module's output (the very tensor), every module is called once,
  and each is of a supported kind and mode (a block also reproduces its recorded output from
  crops); when the first module does not receive the model input itself (a step such as a
  gating multiplication comes first), a window's region of change is measured on what it does
  receive (where that differs from the unoccluded run), so any such step stays exact;
* during the run each chain module's ``forward`` is short-circuited, inside a context manager
  that restores it in a ``finally`` block, to return the prepared output, but only when it
  receives the exact tensor prepared for it: any other call computes normally;
* only the last chain layer's output is materialised (the unoccluded output with the patch
  written in); the intermediate layers return NaN placeholders, after a check on the first
  sample that nothing but the chain reads them (the model's output is unchanged with the
  placeholders). If something else does (a skip connection), every chain layer returns its
  full output instead, which is exact for any consumer but moves more memory;
* the chain stops where a window's region of change would cover more than
  :data:`MAX_CHANGED_FRACTION` (80%) of a layer;
  and small inputs, whose full forward pass is cheaper than the bookkeeping, are evaluated in
  full (decided from the counted cost of each path, :func:`counted_costs`, never from a timing).

Nothing else changes: the engine still evaluates the model on the occluded inputs chunk by
chunk, and the layers after the chain run as usual.
"""

from __future__ import annotations

import math
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medlens.attribution import local_units as units
from medlens.core import engine
from medlens.core.engine import Budget
from medlens.core.hooks import is_torchscript

Region = list[tuple[int, int]]  # [start, stop) per spatial dimension

#: The chain stops at the first layer where a centred window's change would cover more than this
#: share of the layer's output. Chosen on ResNet-18 3D at 64^3 (coarse-to-fine occlusion, 120
#: windows, beside one busy process, by hand): 0.5 stopped before layer2.1, which then ran in full
#: for every window: 25.7 s; 0.65 24.6 s; 0.8 22.8 s; 0.95 22.7 s; maps equal to 2e-7. Stored
#: (``benchmarks/results/side_by_side.json``, 100 windows): 0.8 against 0.5 takes 0.90 of the time
#: quiet and 0.91 beside a busy process on ResNet-18 3D; on DenseNet-121 3D, held out, 1.01 and 1.05
#: (no measurable change: one more dense layer in the chain).
MAX_CHANGED_FRACTION = 0.8
# Python bookkeeping per occluded input and chain layer (slicing, padding, a small layer call),
# measured on the reference CNNs: on inputs whose full forward pass costs less than about twice
# this per layer (28x28 images), evaluating in full is faster.
BOOKKEEPING_S = 1e-4
#: Occluded inputs per engine chunk through the chain (:func:`window_chunk`).
WINDOW_CHUNK = 8


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
    pad_value: float = 0.0  # what the layer's padding holds (-inf for a max pooling)
    native: bool = False  # a block: computed on an aligned crop with its own paddings


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


def _assemble(
    level: Level, full: torch.Tensor | None, base: torch.Tensor, changed: torch.Tensor | None,
    changed_region: Region | None, region: Region,
) -> tuple[torch.Tensor, list[int]]:
    """The layer's input patch for its output ``region`` and where the patch starts.

    The layer's input is ``full`` when it is materialised (the occluded input for the first
    layer), otherwise the unoccluded input ``base`` ``(1, C, *in_size)`` with ``changed`` (the
    previous layer's patch over ``changed_region``) written in. A leaf layer's patch carries the
    layer's own padding at the borders; a block's is its crop, starting on a multiple of its stride.
    """
    span = _span(level, region)
    if level.native:
        span = units.aligned_span(span, level.geometry[1])
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
    if not level.native:
        pads = [v for (lo, hi), n in reversed(list(zip(span, level.in_size))) for v in (max(0, -lo), max(0, hi - n))]
        if any(pads):
            patch = F.pad(patch, pads, value=level.pad_value)  # the layer's own padding at the borders
    return patch, [c.start for c in clipped]


def _layer_patch(
    level: Level, full: torch.Tensor | None, base: torch.Tensor, changed: torch.Tensor | None,
    changed_region: Region | None, region: Region,
) -> torch.Tensor:
    """The layer's output over ``region`` ``(1, C_out, *sizes)`` for one row (see :func:`_assemble`)."""
    patch, starts = _assemble(level, full, base, changed, changed_region, region)
    if not level.native:
        return level.compute(patch)
    try:
        out = units.native_slice(level.compute(patch), starts, region, level.geometry[1])
    except RuntimeError:
        out = None
    if out is None:  # the crop did not give every output (an unusual block): the whole input, exactly
        d = len(region)
        whole = Level(level.module, level.compute, ((1,) * d, (1,) * d, (0,) * d, (1,) * d),
                      level.in_size, level.in_size)
        out = _layer_patch(whole, full, base, changed, changed_region, [(0, n) for n in level.in_size])
        out = out[(slice(None), slice(None), *(slice(a, b) for a, b in region))]
    return out


@dataclass
class Chain:
    """The incremental chain of a model for one input batch.

    ``lean``: only the last layer's output is materialised (nothing else reads the others).
    ``first_base``: the first layer's unoccluded inputs when they are not the model input
    itself (a preprocessing step comes first); the region a window changes is then measured on
    the first layer's actual input (the elements that differ from ``first_base``), so it stays
    exact whatever the step does.
    """

    levels: list[Level]
    lean: bool
    first_base: torch.Tensor | None = None


def window_chunk(chain: Chain, x: torch.Tensor, n_windows: int, budget: Budget, device: torch.device) -> Budget:
    """The engine budget for ``n_windows`` occluded inputs that go through ``chain``: chunks of at
    least :data:`WINDOW_CHUNK` windows (more where they fit the engine's 16 MB working set) where
    the memory budget holds them (``budget.batch_size`` when the user gave one).

    The engine's CPU chunks otherwise aim at a 16 MB working set, which gives two 64^3 volumes per
    chunk; through the chain each window costs its occluded input and the materialised chain
    outputs (the placeholders hold no memory), and larger chunks amortise the chain's per-window
    crops and the small layers after it. Measured on ResNet-18 3D at 64^3, its 328 default
    coarse-to-fine windows at two threads beside one busy process, before the chunks ran side by
    side: 87.1 s in chunks of two, 76.3 s in chunks of eight (commit d4692d1,
    ``benchmarks/results/third_party_speed_occlusion_3d_load1_chunks2.json``); rounds of 16 and 32
    windows were no faster. Side by side (:mod:`medlens.core.chunk_workers`), each worker takes a
    share of such a chunk, so the memory in flight is the same.
    """
    if budget.batch_size is not None:
        return budget
    kept = [level.base for level in chain.levels[-1 if chain.lean else 0:] if level.base is not None]
    per_window = 3 * (x[:1].numel() * x.element_size() + sum(b[:1].numel() * b.element_size() for b in kept))
    fits = engine.budget_bytes(budget, device) // max(1, per_window)
    wanted = max(WINDOW_CHUNK, engine.CPU_CHUNK_TARGET_MB * 2**20 // max(1, per_window))  # small inputs: more
    return Budget(batch_size=int(max(1, min(n_windows, wanted, fits))))


def plan(model: nn.Module, x: torch.Tensor, window: Sequence[int], budget: Budget) -> Chain | None:
    """The incremental chain for occluding windows of size ``window`` on ``x``, or ``None``.

    One forward pass of ``x`` (through the engine) checks the chain and records each of its
    layers' outputs for the unoccluded inputs; one more pass of the first sample, with NaN
    placeholders for the intermediate outputs, checks that nothing else reads them. A
    TorchScript model has no Python layers to short-circuit: ``None``.
    """
    if is_torchscript(model):
        return None
    n = x.ndim - 2
    levels: list[Level] = []
    built: list[torch.Tensor] = []
    bases: list[list[torch.Tensor]] = []  # per level, the outputs of each chunk
    firsts: list[torch.Tensor] = []  # the first level's inputs of each chunk
    first_output: list[torch.Tensor] = []
    at_input = [True]
    checked = False

    def build(start, stop):
        log.clear()  # forget any earlier pass (the chunk-size probe)
        calls.clear()
        built.append(x[start:stop])
        return built[-1]

    def consume(start, stop, outputs, grads, aux):
        nonlocal checked
        chunk_log, chunk_calls = list(log), list(calls)
        log.clear()
        calls.clear()
        if not checked:
            found, first = _chain(chunk_log, chunk_calls, n, window)
            levels.extend(found)
            at_input[0] = first is built[-1]
            bases.extend([] for _ in levels)
            first_output.append(outputs[:1].clone())
            checked = True
        by_module = {id(c[0]): (c[1], c[2]) for c in [*chunk_log, *chunk_calls]}
        for level, chunks in zip(levels, bases):
            chunks.append(by_module[id(level.module)][1])
        if levels and not at_input[0]:
            firsts.append(by_module[id(levels[0].module)][0][0].clone())

    size = engine.chunk_size(model, x[:1], len(x), "forward", budget)
    log: list[tuple[nn.Module, Any, Any]] = []  # (module, inputs, output) of every leaf call, in order
    calls: list[units.Call] = []  # the other module calls, with the leaf calls they span
    with units.record_calls(model, log, calls):
        engine.run(model, len(x), build, consume=consume, budget=Budget(batch_size=size))
    if not any(level.geometry is not None for level in levels):
        return None  # nothing local to save
    for level, chunks in zip(levels, bases):
        level.base = torch.cat(chunks)
    chain = Chain(levels, True, None if at_input[0] else torch.cat(firsts))
    plain_s, incremental_s = counted_costs(chain, x, window)
    if incremental_s >= plain_s:
        return None  # the per-window bookkeeping would cost more than it saves (counted, never timed)

    # Does anything but the chain read the intermediate outputs? Feed NaNs and see.
    outputs = [_placeholder(level.base[:1]) for level in levels[:-1]] + [levels[-1].base[:1]]
    probe = Prepared(x[:1], outputs) if at_input[0] else Prepared(
        None, None, lambda first: outputs, (1, *chain.first_base.shape[1:]))
    with short_circuit([level.module for level in levels], lambda: probe) as hits:
        output = engine.run(
            model, 1, lambda start, stop: x[:1], budget=Budget(batch_size=1), finite_outputs=False
        ).outputs
    if hits[0] != len(levels):
        return None  # the chain was not followed end to end
    # (batch sizes differ between the two passes, so allow rounding; a NaN read is no rounding)
    chain.lean = bool(torch.isfinite(output).all()) and torch.allclose(output, first_output[0], rtol=1e-4, atol=1e-6)
    return chain


def narrow(chain: Chain, x: torch.Tensor, window: Sequence[int]) -> Chain | None:
    """The chain for windows of size ``window`` from one planned for windows no larger: its
    levels up to where a centred window's change would cover more than :data:`MAX_CHANGED_FRACTION`
    of a layer (the recorded outputs, and the probe's verdict on who reads them, hold for any
    prefix), or ``None`` where nothing local is left or the counted costs favour the plain path."""
    region = _centred(chain.levels[0].in_size, window)
    keep: list[Level] = []
    for level in chain.levels:
        region = grow(level, region)
        if math.prod(b - a for a, b in region) / max(1, math.prod(level.out_size)) > MAX_CHANGED_FRACTION:
            break
        keep.append(level)
    if not any(level.geometry is not None for level in keep):
        return None
    out = Chain(keep, chain.lean, chain.first_base)
    plain_s, incremental_s = counted_costs(out, x, window)
    return out if incremental_s < plain_s else None


def counted_costs(chain: Chain, x: torch.Tensor, window: Sequence[int]) -> tuple[float, float]:
    """Predicted seconds per occluded input of the chain's layers evaluated in full (plain path)
    and incrementally (each layer on the region a centred window changes, a block on its whole
    input crop, plus :data:`BOOKKEEPING_S` per layer), from the fixed per-operator cost model
    (:mod:`medlens.core.op_cost`): counted from the shapes, so the choice does not depend on how
    busy the machine is. The layers after the chain cost the same on both paths."""
    from medlens.core.op_cost import price

    plain = incremental = 0.0
    channels = x.shape[1] if chain.first_base is None else chain.first_base.shape[1]
    region = _centred(chain.levels[0].in_size, window)
    for level in chain.levels:
        region = grow(level, region)
        seconds = price(level.module, torch.empty((1, channels, *level.in_size), dtype=x.dtype, device="meta")).seconds
        plain += seconds
        if level.native:  # a block runs on its whole crop, halo included
            span = units.aligned_span(_span(level, region), level.geometry[1])
            crop = [min(hi, n) - max(lo, 0) for (lo, hi), n in zip(span, level.in_size)]
            incremental += price(level.module, torch.empty((1, channels, *crop), dtype=x.dtype, device="meta")).seconds
        else:  # a leaf layer computes exactly the region's outputs
            incremental += seconds * math.prod(b - a for a, b in region) / max(1, math.prod(level.out_size))
        incremental += BOOKKEEPING_S
        channels = level.base.shape[1] if level.base is not None else channels
    return plain, incremental


def _centred(spatial: Sequence[int], window: Sequence[int]) -> Region:
    return [(max(0, (n - w) // 2), max(0, (n - w) // 2) + w) for n, w in zip(spatial, window)]


def _placeholder(like: torch.Tensor, n: int = 1) -> torch.Tensor:
    """A NaN tensor shaped like ``like`` for ``n`` rows, without allocating it (a broadcast view)."""
    return torch.full((), float("nan"), dtype=like.dtype, device=like.device).expand(n, *like.shape[1:])


def _chain(log: list[tuple[nn.Module, Any, Any]], calls: list[units.Call], n: int,
           window: Sequence[int]) -> tuple[list[Level], torch.Tensor | None]:
    """The chain's levels and the first level's input: leaf layers, and blocks (the outermost
    call of a module made only of supported leaves that begins where the chain is) as units."""
    counts: dict[int, int] = {}
    for module, *_ in [*log, *calls]:
        counts[id(module)] = counts.get(id(module), 0) + 1
    levels: list[Level] = []
    expected: torch.Tensor | None = None  # the tensor the next level must receive
    first: torch.Tensor | None = None
    region: Region | None = None
    i = 0
    while i < len(log):
        level, end = None, i + 1
        for call in units.candidates(calls, i):
            module, inputs, output = call[:3]
            if not _receives(inputs, expected, n) or counts[id(module)] != 1 or "forward" in vars(module):
                continue
            geometry = units.block_geometry(call, log, n)
            if geometry is None:
                continue  # not made of local layers only: look inside
            level = Level(module, type(module).forward.__get__(module), geometry, tuple(inputs[0].shape[2:]),
                          tuple(output.shape[2:]), native=True)
            if not _reproduces(level, inputs[0], output, window):
                return levels, first
            end = call[4]
            break
        if level is None:
            module, inputs, output = log[i]
            if not _receives(inputs, expected, n) or counts[id(module)] != 1 or "forward" in vars(module):
                break
            local = units.local_layer(module, n)
            if local is None and not units.elementwise(module):
                break
            compute, geometry, pad = local if local is not None else (module.forward, None, 0.0)
            level = Level(module, compute, geometry, tuple(inputs[0].shape[2:]), tuple(output.shape[2:]), pad_value=pad)
        if not isinstance(output, torch.Tensor) or output.ndim != n + 2:
            break
        region = grow(level, region if region is not None else _centred(level.in_size, window))
        if math.prod(b - a for a, b in region) / max(1, math.prod(level.out_size)) > MAX_CHANGED_FRACTION:
            break
        first = inputs[0] if first is None else first
        levels.append(level)
        expected, i = output, end
    return levels, first


def _receives(inputs: Any, expected: torch.Tensor | None, n: int) -> bool:
    if len(inputs) != 1 or not isinstance(inputs[0], torch.Tensor) or inputs[0].ndim != n + 2:
        return False
    return expected is None or inputs[0] is expected


def _reproduces(level: Level, inputs: torch.Tensor, output: torch.Tensor, window: Sequence[int]) -> bool:
    """Does the block's patch computation give its recorded output (first sample) on a centred
    window's region and on regions at both corners?"""
    with torch.inference_mode():
        return _reproduces_here(level, inputs[:1], output[:1], window)


def _reproduces_here(level: Level, x: torch.Tensor, want: torch.Tensor, window: Sequence[int]) -> bool:
    scale = float(want.abs().max()) if want.numel() else 1.0
    for region in (_centred(level.in_size, window), [(0, min(w, n)) for n, w in zip(level.in_size, window)],
                   [(max(0, n - w), n) for n, w in zip(level.in_size, window)]):
        region = grow(level, region)
        if any(a >= b for a, b in region):
            continue
        got = _layer_patch(level, x, None, None, None, region)
        if got.shape != want[(slice(None), slice(None), *(slice(a, b) for a, b in region))].shape:
            return False
        if not torch.allclose(got, want[(slice(None), slice(None), *(slice(a, b) for a, b in region))],
                              rtol=1e-4, atol=1e-5 * max(scale, 1e-30)):
            return False
    return True


class Prepared:
    """The chain's outputs for one chunk of occluded inputs, and the inputs they answer.

    With ``pending`` (a chain that does not start at the model input), the outputs are computed
    when the first chain layer is called, from the tensor it receives: ``pending(tensor)``."""

    def __init__(self, inputs: torch.Tensor | None, outputs: list[torch.Tensor] | None,
                 pending: Callable[[torch.Tensor], list[torch.Tensor]] | None = None,
                 expects: tuple[int, ...] = ()) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self.pending = pending
        self.expects = expects  # the first layer's input shape that ``pending`` answers


class ThreadsPrepared(threading.local):
    """The :class:`Prepared` of the chunk the calling thread is evaluating: ``build`` sets
    ``value``, and :func:`short_circuit`'s ``current`` reads it in the same thread, so chunks
    evaluated side by side (:func:`medlens.core.engine.run`'s ``parallel``) keep theirs apart."""

    value: Prepared | None = None


def prepare(chain: Chain, inputs: torch.Tensor, samples: torch.Tensor, regions: list[Region | None]) -> Prepared:
    """Each chain layer's outputs for a chunk of occluded inputs ``(n, C, *spatial)``.

    ``samples`` ``(n,)`` names the unoccluded sample of each row; ``regions`` its occluded
    window (spatial ``[start, stop)`` per dim), ``None`` for an unoccluded row. When the chain
    does not start at the model input, the outputs wait for the first layer's actual input
    (and the regions are measured on it).
    """
    if chain.first_base is not None:
        def pending(first: torch.Tensor) -> list[torch.Tensor]:
            return _outputs(chain, first, samples, changed_regions(first, chain.first_base[samples]))

        return Prepared(None, None, pending, (len(samples), *chain.first_base.shape[1:]))
    return Prepared(inputs, _outputs(chain, inputs, samples, regions))


def changed_regions(actual: torch.Tensor, base: torch.Tensor) -> list[Region | None]:
    """Per row, the bounding box of the elements where ``actual`` differs from ``base`` (NaNs
    count as different), ``None`` where nothing does."""
    differs = (actual != base).any(dim=1)
    out: list[Region | None] = []
    for row in differs:
        if not bool(row.any()):
            out.append(None)
            continue
        region = []
        for dim in range(row.ndim):
            hit = row.any(dim=tuple(d for d in range(row.ndim) if d != dim)) if row.ndim > 1 else row
            where = hit.nonzero().flatten()
            region.append((int(where[0]), int(where[-1]) + 1))
        out.append(region)
    return out


def _outputs(chain: Chain, inputs: torch.Tensor, samples: torch.Tensor, regions: list[Region | None]) -> list[torch.Tensor]:
    """Layer by layer, the rows' patches of equal shape go through the layer as one batch."""
    levels = chain.levels
    last = len(levels) - 1
    # materialised outputs: every layer's, or only the last one's
    fulls = [
        level.base[samples] if (i == last or not chain.lean) else None  # a copy per row
        for i, level in enumerate(levels)
    ]
    # per occluded row: the region its change covers, and the last layer's patch over it
    state: dict[int, tuple[Region, torch.Tensor | None]] = {
        row: (region, None) for row, region in enumerate(regions) if region is not None
    }
    for i, level in enumerate(levels):
        groups: dict[tuple[int, ...], list] = {}
        for row, (previous, changed) in list(state.items()):
            region = grow(level, previous)
            if any(a >= b for a, b in region):
                del state[row]  # the change vanished (a window in what a pooling drops): base from here
                continue
            if i == 0:
                full, base = inputs[row : row + 1], None
            else:
                full = fulls[i - 1][row : row + 1] if fulls[i - 1] is not None else None
                base = levels[i - 1].base[int(samples[row]) : int(samples[row]) + 1]
            args = (full, base, changed, previous if i else None, region)
            patch, starts = _assemble(level, *args)
            groups.setdefault(tuple(patch.shape), []).append((row, patch, starts, args))
        for members in groups.values():
            try:
                out = level.compute(torch.cat([patch for _, patch, _, _ in members]))
            except RuntimeError:
                out = None
            for j, (row, _, starts, args) in enumerate(members):
                got = None if out is None else out[j : j + 1]
                if got is not None and level.native:
                    got = units.native_slice(got, starts, args[-1], level.geometry[1])
                if got is None:
                    got = _layer_patch(level, *args)  # this row alone, exactly
                state[row] = (args[-1], got)
                if fulls[i] is not None:
                    fulls[i][(row, slice(None), *(slice(a, b) for a, b in args[-1]))] = got[0]
    return [
        full if full is not None else _placeholder(level.base, len(inputs))
        for full, level in zip(fulls, levels)
    ]


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
                if index == 0 and prepared.pending is not None and isinstance(args[0], torch.Tensor) and (
                    prepared.inputs is None or not _same_tensor(args[0], prepared.inputs)
                ) and tuple(args[0].shape) == prepared.expects:
                    prepared.inputs, prepared.outputs = args[0], prepared.pending(args[0])
                expected = prepared.inputs if index == 0 else prepared.outputs[index - 1]
                if expected is not None and _same_tensor(args[0], expected):
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
