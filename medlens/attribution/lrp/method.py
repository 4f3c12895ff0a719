"""The registered methods ``lrp`` and ``crp``.

``lrp``: layer-wise relevance propagation (Bach et al. 2015; Montavon et al. 2019) with a
composite of rules (default ``epsilon-plus``); the relevance at the output is each output
element's value times the target score's derivative there (a class logit: the logit; a
segmentation channel summed over a region: each summed element's own value), so with conserving
rules the map sums to the score.

``crp``: concept relevance propagation (Achtibat et al., "From attribution maps to
human-understandable explanations through Concept Relevance Propagation", Nature Machine
Intelligence 2023): the LRP map of the part of the decision that passes through chosen channels
of a layer (the relevance at that layer is masked to the channels during the backward pass).

Both run through the one engine (``engine.run`` in gradient mode) with the rules attached, so
chunking and the memory budget apply as for gradients.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any, Callable, Sequence

import torch
from torch import nn

from medlens.attribution.lrp.canonizers import AdditionsAppeared
from medlens.attribution.lrp.composites import Composite, composite_named
from medlens.attribution.lrp.core import attached
from medlens.attribution.registry import register
from medlens.core import engine
from medlens.core.engine import Budget
from medlens.core.hooks import last_conv_layer, resolve_layer
from medlens.core.targets import Target
from medlens.errors import InputError


class _TimesOutput(torch.autograd.Function):
    """The identity, whose backward multiplies the incoming gradient by the output's values."""

    @staticmethod
    def forward(ctx, out: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(out)
        return out.view_as(out)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (out,) = ctx.saved_tensors
        return grad * out


class _SeededAtOutput:
    """A target whose backward pass starts from the output relevance ``out * d score / d out``:
    a class logit's own value at its element (the score), and for a score that sums outputs
    (a callable summing a segmentation channel over a region) each element's own value where
    it counts. Scaling the input gradient by the score instead gave every summed element the
    whole score: a relevance map of N times the score, weighted as the gradient, not the output."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def take(self, rows) -> "_SeededAtOutput":
        return _SeededAtOutput(self.target.take(rows))

    def __call__(self, out: torch.Tensor) -> torch.Tensor:
        return self.target(_TimesOutput.apply(out) if out.requires_grad else out)


def _composite(composite: Any, epsilon: float | None, gamma: float, low: Any, high: Any) -> Composite:
    return composite_named(composite, epsilon=epsilon, gamma=gamma, low=low, high=high)


def relevance(
    model: nn.Module, x: torch.Tensor, target: Target, composite: Composite, budget: Budget = Budget(),
    *, layer: nn.Module | None = None, masks: torch.Tensor | None = None,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """LRP relevance of the inputs ``(B, *input_shape)``, or of ``layer``'s output when
    ``layer`` is given without ``masks``; with ``masks`` ``(B, C)`` the relevance at ``layer`` is
    first restricted to the channels where the mask is non-zero (CRP). ``reduce``: applied to
    each chunk's relevance as it comes (a channel sum over a whole data set keeps ``(N, C)``,
    never the maps)."""
    try:
        return _relevance(model, x, target, composite, budget, layer=layer, masks=masks, reduce=reduce)
    except AdditionsAppeared:  # a forward added branches after all: again, splitting them
        return _relevance(model, x, target, composite, budget, layer=layer, masks=masks, reduce=reduce)


def _relevance(model, x, target, composite, budget, *, layer, masks, reduce) -> torch.Tensor:
    current: dict[str, torch.Tensor] = {}
    parts: list[torch.Tensor] = []

    def build(start: int, stop: int) -> torch.Tensor:
        if masks is not None:
            current["mask"] = masks[start:stop]
        return x[start:stop]

    def consume(start: int, stop: int, outputs: torch.Tensor, values: torch.Tensor, _aux) -> None:
        if not bool(torch.isfinite(values).all()):
            raise InputError(NOT_FINITE.format(dtype=str(values.dtype).replace("torch.", "")))
        parts.append(values if reduce is None else reduce(values))

    with ExitStack() as stack:
        stack.enter_context(attached(model, composite))
        if masks is not None:
            stack.enter_context(_masked(layer, current))
        wrt = layer if masks is None else None
        engine.run(model, len(x), build, mode="gradient", target=_SeededAtOutput(target), budget=budget, layer=wrt,
                   consume=consume)
    return torch.cat(parts)


#: LRP is linear in the relevance, so a non-finite map means relevance outgrew the float range:
#: each epsilon step multiplies it by |contribution| / |z + eps| (unbounded where the sum z of
#: mixed-sign contributions nearly cancels: 15-150x per layer in an untrained UNETR at
#: epsilon 1e-6, 1e33 by its patch embedding), until inf - inf = nan. Returning such a map
#: would present rounding noise as an explanation.
NOT_FINITE = (
    "the LRP relevance overflowed {dtype} (it grew layer by layer where a layer's output nearly "
    "cancels its contributions); use a larger epsilon (e.g. epsilon=0.25) or a composite with "
    "z+ or alpha-beta rules (epsilon-plus)"
)


class _masked:
    """Context: multiply the relevance arriving at ``layer``'s output by the current mask."""

    def __init__(self, layer: nn.Module, current: dict) -> None:
        self.layer, self.current, self.handle = layer, current, None

    def _hook(self, _module, _inputs, output):
        if isinstance(output, tuple):
            output = output[0]
        if isinstance(output, torch.Tensor) and output.requires_grad:
            mask = self.current["mask"]
            if mask.shape[1] != output.shape[1]:
                raise InputError(f"the layer has {output.shape[1]} channels; the channel mask has {mask.shape[1]}")
            shaped = mask.to(output.dtype).view(*mask.shape, *([1] * (output.ndim - 2)))
            output.register_hook(lambda grad: grad * shaped)

    def __enter__(self):
        self.handle = self.layer.register_forward_hook(self._hook)
        return self

    def __exit__(self, *exc):
        self.handle.remove()
        return False


@register(
    "lrp",
    needs_gradients=True,
    uses_hooks=True,
    summary="layer-wise relevance propagation: the score redistributed layer by layer by a composite of rules",
    reference="Bach et al. 2015; Montavon et al. 2019",
)
def lrp(
    model: nn.Module, x: torch.Tensor, target: Target, *, composite: Any = "epsilon-plus", epsilon: float | None = None,
    gamma: float = 0.25, low: Any = None, high: Any = None, budget: Budget = Budget(),
) -> torch.Tensor:
    """LRP relevance of each input element for the target score.

    Parameters
    ----------
    composite : str, Composite or dict
        ``epsilon-plus`` (default), ``epsilon-alpha2-beta1``, ``epsilon-plus-flat``,
        ``epsilon-alpha2-beta1-flat``, ``epsilon-gamma-box``, ``epsilon``; a
        :class:`~medlens.attribution.lrp.composites.Composite`; or a dict from layer name or type
        to rule (:class:`~medlens.attribution.lrp.composites.NameMap`).
    epsilon : float, optional
        Of the epsilon rule: default 1e-6 on the dense layers of the named composites, 0.25 on
        every layer of ``epsilon`` (pass ``1e-12`` there for LRP-0, which conserves the score).
    gamma : float
        Of the gamma rule (``epsilon-gamma-box``).
    low, high : float or tensor, optional
        Input bounds of the z^B rule (``epsilon-gamma-box``); default each sample's min / max.

    Returns
    -------
    torch.Tensor
        ``(B, C, *spatial)``; with conserving rules (LRP-0, z+, no biases) it sums to the
        target score (a logit, or a region's summed segmentation output).
    """
    return relevance(model, x, target, _composite(composite, epsilon, gamma, low, high), budget)


def channel_masks(channels: int | Sequence[int] | torch.Tensor, n: int, n_channels: int,
                  dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``(n, n_channels)`` masks: 1 on the chosen channels (one set for all rows, or ``(n, C)``)."""
    if isinstance(channels, torch.Tensor) and channels.ndim == 2:
        return channels.to(dtype)
    try:
        idx = torch.as_tensor([channels] if isinstance(channels, int) else list(channels), dtype=torch.long)
    except (TypeError, ValueError, RuntimeError) as err:  # a string, a nested or ragged list, None
        raise InputError(f"channels must be a channel index or a sequence of them, got {channels!r}") from err
    if idx.numel() and (idx.min() < 0 or idx.max() >= n_channels):
        raise InputError(f"channels must lie in 0..{n_channels - 1}, got {idx.tolist()}")
    mask = torch.zeros(n_channels, dtype=dtype)
    mask[idx] = 1
    return mask.expand(n, n_channels).clone()


def concept_relevance(layer_relevance: torch.Tensor) -> torch.Tensor:
    """``(B, C)`` relevance of each channel: the layer's relevance summed over space."""
    return layer_relevance.flatten(2).sum(2) if layer_relevance.ndim > 2 else layer_relevance


@register(
    "crp",
    needs_gradients=True,
    uses_hooks=True,
    summary="concept relevance propagation: the LRP map of the decision's part through chosen channels of a layer",
    reference="Achtibat et al. 2023",
)
def crp(
    model: nn.Module, x: torch.Tensor, target: Target, *, layer: Any = None, channels: Any = None,
    composite: Any = "epsilon-plus", epsilon: float | None = None, budget: Budget = Budget(),
) -> tuple[torch.Tensor, dict]:
    """LRP relevance conditioned on channels (concepts) of ``layer``.

    Parameters
    ----------
    layer : nn.Module or str, optional
        Default: the last convolution (with its batch norm folded in).
    channels : int, sequence of int, (B, C) tensor, optional
        The channels the relevance must pass through; default: each sample's most relevant
        channel of the layer (costs one more backward pass, down to the layer only).
    composite, epsilon
        As for ``lrp``.

    Returns
    -------
    torch.Tensor
        ``(B, C, *spatial)``, with ``extras["channels"]`` the conditioned channels.
    """
    module = last_conv_layer(model) if layer is None else resolve_layer(model, layer)
    comp = _composite(composite, epsilon, 0.25, None, None)
    if channels is None:
        # each chunk's layer relevance is summed over space as it arrives: (B, C) is kept,
        # never the layer's maps (B, C, *spatial) of the whole batch
        per_channel = relevance(model, x, target, comp, budget, layer=module, reduce=concept_relevance)
        masks = torch.zeros(per_channel.shape[:2], dtype=x.dtype)
        masks[torch.arange(len(x)), per_channel.argmax(1)] = 1
    else:
        masks = channel_masks(channels, len(x), _out_channels(model, module, x), x.dtype)
    values = relevance(model, x, target, comp, budget, layer=module, masks=masks.to(x.device))
    chosen = [torch.nonzero(m).flatten().tolist() for m in masks]
    return values, {"channels": chosen}


def _out_channels(model: nn.Module, module: nn.Module, x: torch.Tensor) -> int:
    for attr in ("out_channels", "out_features", "num_features"):
        if isinstance(getattr(module, attr, None), int):
            return getattr(module, attr)
    from medlens.core.hooks import capture

    with capture(model, module) as record, torch.no_grad():
        model(x[:1])
    return record.activation.shape[1]
