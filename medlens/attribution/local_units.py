"""The local units of the incremental chain (:mod:`medlens.attribution.incremental`).

A unit is a module whose output at each location depends only on its input within a known
window (its geometry: kernel extent, stride and padding per spatial dimension):

* a leaf layer: a convolution with zero padding, a max pooling (padded with -inf, as PyTorch
  pads it), an average pooling (zero padding counted in the divisor), or an element-wise layer
  (eval-mode batch norm, activation, eval-mode dropout), whose geometry is ``None``;
* a block: a module that is not a plain ``nn.Sequential`` and whose leaves are all such layers,
  e.g. a residual block (MONAI's ``ResNetBlock``, torchvision's ``BasicBlock``, with or without a
  downsample) or a dense layer (its input concatenated with a convolution path). Its geometry
  is composed from the leaves it calls, following each leaf's input back to the block's input;
  where a leaf reads a tensor no leaf made (the result of an addition or a concatenation), the
  geometry covers every same-sized tensor seen so far, so a hidden skip path is inside it. A
  block is recomputed on the cropped input with its own paddings, the crop starting on a multiple
  of its stride (so that the crop's outputs are the block's outputs shifted), and only the
  outputs whose whole receptive field is inside the crop are kept: exact, also at the borders,
  where the crop ends where the volume does. A block is accepted only after this patch
  computation reproduces its recorded output on a few regions of the unoccluded input.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch
from torch import nn

from medlens.core import layers as by_rank
from medlens.core.hooks import CONV_TYPES

Geometry = tuple[tuple[int, ...], ...]  # (kernel, stride, padding, dilation), each per spatial dim

_ELEMENTWISE = (
    nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Softplus, nn.Tanh, nn.Sigmoid, nn.Hardswish, nn.Hardtanh, nn.Hardsigmoid,
)


def _tuple(value: Any, n: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (int(value),) * n


def local_layer(module: nn.Module, n: int) -> tuple[Callable, Geometry, float] | None:
    """(patch function with no padding, geometry, padding value) of a supported local leaf layer."""
    if isinstance(module, CONV_TYPES):
        if module.padding_mode != "zeros":
            return None
        k, s, d = _tuple(module.kernel_size, n), _tuple(module.stride, n), _tuple(module.dilation, n)
        if module.padding == "valid":
            p = (0,) * n
        elif module.padding == "same":
            if any(di * (ki - 1) % 2 for ki, di in zip(k, d)):
                return None  # torch pads the extra on the right: not a symmetric padding
            p = tuple(di * (ki - 1) // 2 for ki, di in zip(k, d))
        else:
            p = _tuple(module.padding, n)

        def conv(patch, m=module):
            return by_rank.conv_fn(n)(patch, m.weight, m.bias, m.stride, 0, m.dilation, m.groups)

        return conv, (k, s, p, d), 0.0
    if isinstance(module, by_rank.MAX_POOL_TYPES + by_rank.AVG_POOL_TYPES):
        if module.ceil_mode:
            return None
        k, p = _tuple(module.kernel_size, n), _tuple(module.padding, n)
        s = _tuple(module.stride if module.stride is not None else module.kernel_size, n)
        if isinstance(module, by_rank.MAX_POOL_TYPES):
            if module.return_indices:
                return None
            d = _tuple(module.dilation, n)
            pool = (lambda patch, k=k, s=s, d=d: by_rank.max_pool_fn(n)(patch, k, s, 0, d))
            return pool, (k, s, p, d), -math.inf  # max pooling pads with -inf
        if getattr(module, "divisor_override", None) is not None or (any(p) and not module.count_include_pad):
            return None
        return (lambda patch, k=k, s=s: by_rank.avg_pool_fn(n)(patch, k, s, 0)), (k, s, p, (1,) * n), 0.0
    return None


def elementwise(module: nn.Module) -> bool:
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        # eval mode with running statistics: a per-channel affine map
        return not module.training and module.running_mean is not None
    if isinstance(module, nn.modules.dropout._DropoutNd):
        return not module.training
    return isinstance(module, _ELEMENTWISE)


# --- recording a forward pass: leaf calls and the block calls around them ----------------------

Call = tuple[nn.Module, Any, Any, int, int]  # (module, inputs, output, first leaf, end leaf) of a block call


@contextmanager
def record_calls(model: nn.Module, log: list, calls: list[Call]) -> Iterator[None]:
    """Append ``(module, inputs, output)`` of every leaf call to ``log`` and
    ``(module, inputs, output, first, end)`` of every other module call but the model's own to
    ``calls`` (``log[first:end]`` are the leaf calls made inside it)."""
    starts: list[int] = []
    handles = []
    for module in model.modules():
        if not list(module.children()):
            handles.append(module.register_forward_hook(lambda m, i, o: log.append((m, i, o))))
        elif module is not model:
            handles.append(module.register_forward_pre_hook(lambda m, i: starts.append(len(log))))
            handles.append(module.register_forward_hook(
                lambda m, i, o: calls.append((m, i, o, starts.pop(), len(log)))
            ))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _pure_pipe(module: nn.Module) -> bool:
    """A plain ``nn.Sequential``: its children are the chain's units, one after the other."""
    return isinstance(module, nn.Sequential) and type(module).forward is nn.Sequential.forward


def candidates(calls: list[Call], first: int) -> list[Call]:
    """The block calls that begin at leaf call ``first``, outermost first (plain sequentials,
    whose children are units of their own, left out)."""
    found = [c for c in calls if c[3] == first and c[4] > first and not _pure_pipe(c[0])]
    order = {id(c): k for k, c in enumerate(calls)}  # an outer call completes after its inner ones
    return sorted(found, key=lambda c: (-(c[4] - c[3]), -order[id(c)]))


def _compose(g: tuple[int, int, int], k: int, s: int, p: int, d: int) -> tuple[int, int, int]:
    big_k, big_s, big_p = g
    return big_k + d * (k - 1) * big_s, big_s * s, big_p + p * big_s


def _cover(gs: list[tuple[int, int, int]]) -> tuple[int, int, int] | None:
    if len({s for _, s, _ in gs}) != 1:
        return None
    pad = max(p for _, _, p in gs)
    return pad + max(k - p for k, _, p in gs), gs[0][1], pad


def block_geometry(call: Call, log: list, n: int) -> Geometry | None:
    """The composed geometry of a block call whose leaves are all supported, else ``None``."""
    _, inputs, output, first, end = call
    source = inputs[0]
    known: dict[int, tuple[torch.Tensor, list[tuple[int, int, int]]]] = {id(source): (source, [(1, 1, 0)] * n)}

    def cover_of(shape) -> list[tuple[int, int, int]] | None:
        same = [g for t, g in known.values() if tuple(t.shape[2:]) == tuple(shape)]
        if not same:
            return None
        per_dim = [_cover([g[dim] for g in same]) for dim in range(n)]
        return None if any(g is None for g in per_dim) else per_dim

    for module, args, out in log[first:end]:
        if len(args) != 1 or not isinstance(args[0], torch.Tensor) or not isinstance(out, torch.Tensor):
            return None
        if args[0].ndim != n + 2 or out.ndim != n + 2:
            return None
        entry = known.get(id(args[0]))
        geometry = entry[1] if entry is not None and entry[0] is args[0] else cover_of(args[0].shape[2:])
        if geometry is None:
            return None
        local = local_layer(module, n)
        if local is not None:
            k, s, p, d = local[1]
            geometry = [_compose(g, *kspd) for g, kspd in zip(geometry, zip(k, s, p, d))]
        elif not elementwise(module):
            return None
        known[id(out)] = (out, geometry)
    if not isinstance(output, torch.Tensor) or output.ndim != n + 2:
        return None
    final = cover_of(output.shape[2:])
    if final is None:
        return None
    k, s, p = zip(*final)
    return tuple(k), tuple(s), tuple(p), (1,) * n


def native_slice(out: torch.Tensor, starts: list[int], region, stride) -> torch.Tensor | None:
    """A block's outputs over ``region`` from its output ``out`` on an input crop starting at
    ``starts`` (each a multiple of the stride), or ``None`` when the crop does not give them all."""
    index = []
    for (a, b), start, s, size in zip(region, starts, stride, out.shape[2:]):
        offset = start // s
        if a - offset < 0 or b - offset > size:
            return None
        index.append(slice(a - offset, b - offset))
    return out[(slice(None), slice(None), *index)]


def aligned_span(span: list[tuple[int, int]], stride) -> list[tuple[int, int]]:
    """``span`` with each start lowered to a multiple of the stride (from where a crop's outputs
    are the block's outputs shifted by a whole number of positions)."""
    return [((lo // s) * s, hi) for (lo, hi), s in zip(span, stride)]
