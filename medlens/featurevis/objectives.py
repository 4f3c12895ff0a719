"""Objectives for activation maximisation: what the optimised input should make large.

An objective maps what one forward pass saw (a :class:`Probe`: the input, the model output and
the activations of the layers the objective reads) to **one value per image** ``(B,)``.
Objectives compose with ``+``, ``-``, unary ``-`` and multiplication or division by a number,
so regularised or combined goals read like the formula they stand for::

    channel("features.block3.act", 5) - 1e-2 * total_variation() + 0.5 * diversity("features.block3.act")

:func:`per_image` batches different objectives in one run: objective ``i`` is evaluated on image
``i`` (e.g. 16 channels of one layer optimised at once).

The levels follow Olah, Mordvintsev and Schubert, "Feature Visualization", Distill 2017 (neuron,
channel, layer/DeepDream, class logit, class probability, diversity, direction); the idea goes
back to Erhan et al., "Visualizing higher-layer features of a deep network", 2009:
``x* = argmax_x h_ij(theta, x)``.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from medlens.core.hooks import resolve_layer
from medlens.core.targets import multilabel_of, probabilities
from medlens.errors import InputError, TargetError

LayerRef = "nn.Module | str"


@dataclass
class Probe:
    """What one forward pass of the optimisation saw.

    Attributes
    ----------
    model : nn.Module
    image : torch.Tensor
        The parameterised input ``(B, C, *spatial)`` in the model's input range, *before* the
        random transforms (penalties such as total variation act on it).
    output : torch.Tensor
        Model output for the transformed input, ``(B, K)``.
    activations : dict
        Layer module -> its output ``(B, C, *spatial)`` (or ``(B, C)``), with the graph kept.
    input_range : (float, float)
    """

    model: nn.Module
    image: torch.Tensor
    output: torch.Tensor
    activations: dict = field(default_factory=dict)
    input_range: tuple[float, float] = (0.0, 1.0)

    def activation(self, layer: nn.Module | str) -> torch.Tensor:
        # render keys the record by the objective's own layer references too: no name lookup per step
        module = layer if layer in self.activations else resolve_layer(self.model, layer)
        if module not in self.activations:
            raise InputError(f"layer {_layer_label(layer)} was not recorded during the forward pass")
        act = self.activations[module]
        if act is None:
            raise InputError(f"layer {_layer_label(layer)} was not run by the model's forward pass")
        return act


ObjectiveFn = Callable[[Probe], torch.Tensor]


@dataclass(frozen=True, eq=False)
class Objective:
    """A differentiable goal: one value per image, to be maximised.

    Parameters
    ----------
    fn : callable
        ``Probe -> (B,)``.
    layers : tuple
        The layers (modules or dotted names) whose activations ``fn`` reads; render records
        exactly these.
    name : str
        Human-readable description (``"channel(features.block1.act, 3)"``).
    """

    fn: ObjectiveFn
    layers: tuple = ()
    name: str = "objective"

    def __call__(self, probe: Probe) -> torch.Tensor:
        return self.fn(probe)

    def __repr__(self) -> str:
        return f"Objective({self.name})"

    # Composition. Values are per image, so sums and scalings act image-wise.
    def __add__(self, other: "Objective | float") -> "Objective":
        if isinstance(other, numbers.Number):
            value = float(other)
            return Objective(lambda p: self.fn(p) + value, self.layers, f"{self.name} + {value:g}")
        other = _check(other)
        return Objective(lambda p: self.fn(p) + other.fn(p), _union(self.layers, other.layers),
                         f"{self.name} + {other.name}")

    def __radd__(self, other: "Objective | float") -> "Objective":
        # sum([...]) starts from 0
        if isinstance(other, numbers.Number) and other == 0:
            return self
        return self.__add__(other)

    def __neg__(self) -> "Objective":
        return Objective(lambda p: -self.fn(p), self.layers, f"-({self.name})")

    def __sub__(self, other: "Objective | float") -> "Objective":
        if isinstance(other, numbers.Number):
            return self + (-float(other))
        other = _check(other)
        return Objective(lambda p: self.fn(p) - other.fn(p), _union(self.layers, other.layers),
                         f"{self.name} - {other.name}")

    def __rsub__(self, other: "Objective | float") -> "Objective":
        return (-self) + other

    def __mul__(self, factor: float) -> "Objective":
        if not isinstance(factor, numbers.Number):
            raise TypeError("objectives multiply only by numbers")
        value = float(factor)
        return Objective(lambda p: value * self.fn(p), self.layers, f"{value:g} * {self.name}")

    __rmul__ = __mul__

    def __truediv__(self, divisor: float) -> "Objective":
        if not isinstance(divisor, numbers.Number):
            raise TypeError("objectives divide only by numbers")
        return self * (1.0 / float(divisor))


def _check(other: object) -> Objective:
    if not isinstance(other, Objective):
        raise TypeError(f"cannot combine an objective with {type(other).__name__}")
    return other


def _union(a: tuple, b: tuple) -> tuple:
    out = list(a)
    for layer in b:
        if not any(layer is x or (isinstance(layer, str) and layer == x) for x in out):
            out.append(layer)
    return tuple(out)


def _layer_label(layer: nn.Module | str) -> str:
    return layer if isinstance(layer, str) else type(layer).__name__


def _channel_of(act: torch.Tensor, index: int, layer: nn.Module | str) -> torch.Tensor:
    """``act[:, index]`` after checking the index: ``(B, *spatial)``."""
    if act.ndim < 2:
        raise InputError(
            f"layer {_layer_label(layer)} has output shape {tuple(act.shape)}; expected (batch, channels, ...)"
        )
    if not -act.shape[1] <= index < act.shape[1]:
        raise InputError(
            f"layer {_layer_label(layer)} has {act.shape[1]} channels (0..{act.shape[1] - 1}); "
            f"channel {index} does not exist"
        )
    return act[:, index]


def neuron(layer: nn.Module | str, channel: int, position: Sequence[int] | None = None) -> Objective:
    """One unit: the activation of ``channel`` at one spatial ``position`` (the centre by default).

    For ``(B, C, *spatial)`` activations the value is ``act[b, channel, *position]``; for
    ``(B, C)`` activations (a linear layer) the position is ignored.
    """
    pos = None if position is None else tuple(int(i) for i in position)

    def fn(p: Probe) -> torch.Tensor:
        act = _channel_of(p.activation(layer), channel, layer)  # (B, *spatial)
        spatial = act.shape[1:]
        if not spatial:
            return act
        where = pos if pos is not None else tuple(s // 2 for s in spatial)
        if len(where) != len(spatial) or not all(-s <= i < s for i, s in zip(where, spatial)):
            raise InputError(
                f"position {where} does not fit the activation of layer {_layer_label(layer)}, "
                f"whose spatial shape is {tuple(spatial)}"
            )
        return act[(slice(None), *where)]

    where_text = "centre" if pos is None else ",".join(map(str, pos))
    return Objective(fn, (layer,), f"neuron({_layer_label(layer)}, {channel}, {where_text})")


def channel(layer: nn.Module | str, channel: int) -> Objective:
    """A feature map: the mean activation of ``channel`` over all positions."""

    def fn(p: Probe) -> torch.Tensor:
        act = _channel_of(p.activation(layer), channel, layer)
        return act.reshape(act.shape[0], -1).mean(1)

    return Objective(fn, (layer,), f"channel({_layer_label(layer)}, {channel})")


def layer(layer: nn.Module | str) -> Objective:
    """A whole layer, as in DeepDream: the mean squared activation over channels and positions."""

    def fn(p: Probe) -> torch.Tensor:
        act = p.activation(layer)
        return act.reshape(act.shape[0], -1).pow(2).mean(1)

    return Objective(fn, (layer,), f"layer({_layer_label(layer)})")


def _class_column(output: torch.Tensor, index: int) -> torch.Tensor:
    if output.ndim != 2:
        raise InputError(f"the model output has shape {tuple(output.shape)}; class objectives need (batch, classes)")
    if not -output.shape[1] <= index < output.shape[1]:
        raise TargetError(f"class {index} is out of range: the model has {output.shape[1]} output(s)")
    return output[:, index]


def logit(class_index: int) -> Objective:
    """The pre-softmax score of one class (``output[:, class_index]``)."""
    return Objective(lambda p: _class_column(p.output, class_index), (), f"logit({class_index})")


def output(index: int = 0) -> Objective:
    """One output of any model: a regression prediction, a neuron's modelled response, a logit.

    ``output[:, index]`` for ``(B, K)`` outputs, ``output`` itself for ``(B,)`` outputs (then
    ``index`` must be 0). For a model that is linear in its input, ``f(x) = <w, x> + b``, the
    maximiser over the input box is ``hi`` where ``w > 0`` and ``lo`` where ``w < 0``; with a
    penalty ``mu/2 |x - c|^2`` it is ``c + w / mu`` (tests check both).
    """

    def fn(p: Probe) -> torch.Tensor:
        out = p.output
        if out.ndim == 1:
            if index not in (0, -1):
                raise TargetError(f"output {index} is out of range: the model has one output per input")
            return out
        return _class_column(out.reshape(out.shape[0], -1), index)

    return Objective(fn, (), f"output({index})")


def probability(class_index: int, *, multilabel: bool = False) -> Objective:
    """The softmax probability of one class (single-logit models: class 1 is the sigmoid, class 0 its complement).

    Unlike the logit it can only be raised by lowering the other classes too: the input the
    model finds most typical of the class *and* least typical of the others.

    ``multilabel=True`` is for a head with one sigmoid per finding (ChestMNIST's 14 findings):
    the probability of finding ``class_index`` is ``sigmoid(output[:, class_index])``, which the
    other findings do not share; a softmax across independent findings would make them compete.
    A model wrapped in :class:`medlens.MultiLabel` is read so without it (its ``outputs=
    "probabilities"``: the output column as it is).
    """

    def fn(p: Probe) -> torch.Tensor:
        wrapper = multilabel_of(p.model) if p.model is not None else None  # a probe built by hand may have no model
        if wrapper is not None and wrapper.outputs == "probabilities":
            return _class_column(p.output, class_index)
        if multilabel or wrapper is not None:
            return torch.sigmoid(_class_column(p.output, class_index))
        # single-logit models get two columns, (1 - sigmoid, sigmoid), as everywhere in medlens
        return _class_column(probabilities(p.output), class_index)

    return Objective(fn, (), f"{'sigmoid ' if multilabel else ''}probability({class_index})")


def diversity(layer: nn.Module | str) -> Objective:
    """Reward images of a batch for differing in style at ``layer``.

    Per image ``i``: minus the mean cosine similarity between its Gram matrix of ``layer``
    and those of the other images (Olah et al. 2017, "Diversity"). Add it, weighted, to an
    objective shared by the batch to get several different inputs that all excite a unit.
    A batch of one scores 0.
    """

    def fn(p: Probe) -> torch.Tensor:
        act = p.activation(layer)
        b, c = act.shape[:2]
        if b < 2:
            return act.new_zeros(b)
        flat = act.reshape(b, c, -1)  # (B, C, positions)
        gram = flat @ flat.transpose(1, 2)  # (B, C, C)
        gram = gram.reshape(b, -1)
        gram = gram / gram.norm(dim=1, keepdim=True).clamp_min(1e-12)
        sim = gram @ gram.T  # (B, B) cosine similarities
        off_diagonal = sim.sum(1) - sim.diagonal()
        return -off_diagonal / (b - 1)

    return Objective(fn, (layer,), f"diversity({_layer_label(layer)})")


def direction(layer: nn.Module | str, vector: torch.Tensor | Sequence[float]) -> Objective:
    """A direction in activation space: the mean over positions of ``<act[:, :, pos], v/|v|>``.

    ``vector`` has one entry per channel of ``layer``. Linear in the activations (Lucid's
    ``direction``), so its maximiser is the input that moves the layer furthest along ``v``.
    """
    vec = torch.as_tensor(vector, dtype=torch.float64).flatten()
    norm = float(vec.norm())
    if norm == 0 or not torch.isfinite(vec).all():
        raise InputError("the direction vector must be finite and non-zero")
    vec = vec / norm

    def fn(p: Probe) -> torch.Tensor:
        act = p.activation(layer)
        if act.shape[1] != len(vec):
            raise InputError(
                f"the direction has {len(vec)} entries but layer {_layer_label(layer)} has {act.shape[1]} channels"
            )
        v = vec.to(device=act.device, dtype=act.dtype).reshape(1, -1, *([1] * (act.ndim - 2)))
        proj = (act * v).sum(1)  # (B, *spatial)
        return proj.reshape(act.shape[0], -1).mean(1)

    return Objective(fn, (layer,), f"direction({_layer_label(layer)})")


def per_image(objectives: Sequence[Objective]) -> Objective:
    """Batch different objectives in one run: objective ``i`` is evaluated on image ``i``.

    The result expects a batch of exactly ``len(objectives)`` images.
    """
    objs = tuple(objectives)
    if not objs or not all(isinstance(o, Objective) for o in objs):
        raise InputError("per_image needs a non-empty list of objectives")
    layers: tuple = ()
    for o in objs:
        layers = _union(layers, o.layers)

    def fn(p: Probe) -> torch.Tensor:
        b = p.image.shape[0]
        if b != len(objs):
            raise InputError(f"{len(objs)} objectives need a batch of {len(objs)} images, got {b}")
        # Every objective sees the whole batch (diversity needs it) and keeps its own row.
        return torch.stack([o.fn(p)[i] for i, o in enumerate(objs)])

    names = [o.name for o in objs]
    shown = ", ".join(names[:3]) + (f", ... ({len(names)} in all)" if len(names) > 3 else "")
    return Objective(fn, layers, f"per_image[{shown}]")


def channels(layer: nn.Module | str, indices: Sequence[int]) -> Objective:
    """``per_image([channel(layer, i) for i in indices])``: one image per channel."""
    return per_image([channel(layer, int(i)) for i in indices])


# Penalties on the input image (before the random transforms). They are positive; subtract
# them: ``objective - 0.05 * total_variation()``. They are means, so a weight carries over
# between input sizes and ranks.


def total_variation() -> Objective:
    """Anisotropic total variation of the image: mean absolute difference of neighbours,
    summed over the spatial axes (Mahendran and Vedaldi, 2015)."""

    def fn(p: Probe) -> torch.Tensor:
        x = p.image
        b = x.shape[0]
        total = x.new_zeros(b)
        for axis in range(2, x.ndim):
            total = total + x.diff(dim=axis).abs().reshape(b, -1).mean(1)
        return total

    return Objective(fn, (), "total_variation")


def _centre(p: Probe, centre: float | None) -> float:
    lo, hi = p.input_range
    return (lo + hi) / 2 if centre is None else centre


def l1(centre: float | None = None) -> Objective:
    """Mean absolute deviation of the image from ``centre`` (the middle of the input range)."""
    return Objective(
        lambda p: (p.image - _centre(p, centre)).abs().reshape(p.image.shape[0], -1).mean(1), (), "l1"
    )


def l2(centre: float | None = None) -> Objective:
    """Root mean square deviation of the image from ``centre`` (the middle of the input range)."""

    def fn(p: Probe) -> torch.Tensor:
        d = (p.image - _centre(p, centre)).reshape(p.image.shape[0], -1)
        return (d.pow(2).mean(1) + 1e-12).sqrt()

    return Objective(fn, (), "l2")
