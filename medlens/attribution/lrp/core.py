"""LRP attached to a model by hooks, inside a context.

:func:`attached` registers, on every layer a composite gives a rule, a forward hook that
replaces the layer's output by the same values computed by :class:`_RuleFunction`, whose
backward pass returns the rule's relevance instead of the layer's gradient. Backpropagating
the target score then propagates relevance (the "modified gradient" formulation of LRP), so
the one engine (``medlens.core.engine``) computes LRP as it computes gradients. Hooks exist
only inside the context, which removes them in a ``finally`` block, also when the model fails.

Batch normalisation is folded into the layer that feeds it as the data flow shows (the batch
norm's input is that layer's output tensor), so that the rule sees the merged layer
``w' = w gamma / sigma``, ``b' = (b - mu) gamma / sigma + beta``; parameters are never changed,
so nothing needs restoring. A batch norm fed by anything else passes relevance unchanged.
"""

from __future__ import annotations

import weakref
from contextlib import ExitStack, contextmanager
from typing import Any, Iterator

import torch
from torch import nn

from medlens.attribution.lrp.canonizers import constant_attention, residual_sums, without_inplace
from medlens.attribution.lrp.composites import Composite, refuse_recurrent_layers
from medlens.attribution.lrp.rules import Constant, Params, Pass, Rule
from medlens.core.hooks import require_hooks

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
_AFFINE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


class _Call:
    """One call of a ruled layer: what its backward pass needs."""

    __slots__ = ("site", "inputs", "norm", "nonneg", "_output", "_version")

    def __init__(self, site: "Site", inputs: tuple[torch.Tensor, ...], output: torch.Tensor | None,
                 nonneg: bool = False) -> None:
        self.site, self.inputs, self.norm, self.nonneg = site, inputs, None, nonneg
        self.keep_output(output)

    def keep_output(self, output: torch.Tensor | None) -> None:
        """Keep the layer's forward output (for rules that reuse it as ``z``) and its version."""
        self._output, self._version = output, None if output is None else output._version

    @property
    def output(self) -> torch.Tensor | None:
        """The kept output, or ``None`` if the model changed it in place since (an ``out += r``
        on a layer's output): the rule then recomputes ``z`` from the saved inputs."""
        if self._output is None or self._output._version != self._version:
            return None
        return self._output

    def params(self) -> Params | None:
        """The layer's effective parameters (its batch norm folded in), kept with what the
        rules derived from them (:data:`_KEPT`) while none of them changes."""
        site, layer = self.site, self.site.layer
        if not site.rule.needs_params:
            return None
        tensors = [layer.weight, layer.bias]
        if self.norm is not None:
            tensors += [self.norm.weight, self.norm.bias, self.norm.running_mean, self.norm.running_var]
        key = (id(self.norm), getattr(self.norm, "eps", None),
               *((id(t), t._version, t.data_ptr(), t.dtype, t.device) if t is not None else None for t in tensors))
        kept = _KEPT.get(layer)
        if kept is None or kept[0] != key or any(r() is not t for r, t in zip(kept[1], tensors)):
            weight = layer.weight.detach()
            bias = None if layer.bias is None else layer.bias.detach()
            if self.norm is not None:
                weight, bias = fold_batch_norm(weight, bias, self.norm)
            kept = (key, [weakref.ref(t) if t is not None else _none for t in tensors], Params(weight, bias))
            _KEPT[layer] = kept
        return kept[2]


#: Per layer, its effective parameters and what the rules derived from them (positive parts,
#: stacked blocks): ``{layer: (key, parameter refs, Params)}``, weakly keyed (gone with the
#: model) and made again when a parameter, the folded batch norm or its statistics change
#: (versions, storage, dtype, device). Kept across explanations: folding and clamping every
#: layer's weights again each call cost DenseNet-121 about as much as a tenth of its gradient
#: pass (new weight-sized tensors each time); the price is about one copy of the convolution
#: weights for as long as the model lives.
_KEPT: weakref.WeakKeyDictionary[nn.Module, tuple] = weakref.WeakKeyDictionary()


def _none() -> None:
    return None


def _forget_transient(layers: list[nn.Module]) -> None:
    """Drop what the rules made for one input shape (kept during one explanation only)."""
    for layer in layers:
        kept = _KEPT.get(layer)
        if kept is not None:
            kept[2].forget_transient()


def fold_batch_norm(weight: torch.Tensor, bias: torch.Tensor | None, norm: nn.Module):
    """Parameters of ``norm(layer(x))`` as one affine layer (eval-mode batch norm)."""
    scale = norm.running_var.detach().add(norm.eps).rsqrt()
    if norm.weight is not None:
        scale = scale * norm.weight.detach()
    shift = -norm.running_mean.detach() * scale
    if norm.bias is not None:
        shift = shift + norm.bias.detach()
    w = weight * scale.view(-1, *([1] * (weight.ndim - 1)))
    b = shift if bias is None else bias * scale + shift
    return w, b


class _RuleFunction(torch.autograd.Function):
    """Identity on the layer's output values; backward: the rule's relevance of the inputs."""

    @staticmethod
    def forward(ctx, call: _Call, holder: list, *inputs: torch.Tensor) -> torch.Tensor:
        ctx.call = call
        ctx.save_for_backward(*inputs)
        return holder.pop()  # a tensor made outside the function: a new output, not a view

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        call: _Call = ctx.call
        inputs = ctx.saved_tensors
        mask = call.site.mask
        if mask is not None:
            relevance = relevance * mask.to(relevance.dtype)
        rule = call.site.rule
        with torch.no_grad():
            if call.nonneg and rule.sign_aware:
                out = rule.relevance(call.site.layer, inputs, relevance, call.params(), call.output, nonneg=True)
            else:
                out = rule.relevance(call.site.layer, inputs, relevance, call.params(), call.output)
        return (None, None, *out)


class _PassFunction(torch.autograd.Function):
    """Identity on the layer's output values; backward: the relevance, unchanged (the ``pass``
    rule of activations and norms, without the bookkeeping of a rule that needs its inputs)."""

    @staticmethod
    def forward(ctx, site: Site, holder: list, _input: torch.Tensor) -> torch.Tensor:
        ctx.site = site
        return holder.pop()

    @staticmethod
    def backward(ctx, relevance: torch.Tensor):
        mask = ctx.site.mask
        return None, None, relevance if mask is None else relevance * mask.to(relevance.dtype)


class Site:
    """A layer with its rule, and an optional channel mask on its output relevance (CRP)."""

    def __init__(self, name: str, layer: nn.Module, rule: Rule) -> None:
        self.name, self.layer, self.rule = name, layer, rule
        self.mask: torch.Tensor | None = None


class Attached:
    """The state of :func:`attached`: the sites by layer name, and the current forward's calls."""

    def __init__(self) -> None:
        self.sites: dict[str, Site] = {}
        self._outputs: dict[int, tuple[Any, _Call]] = {}
        self._relu_outputs: dict[int, Any] = {}  # id -> weakref: outputs of hooked ReLUs (>= 0)

    def site_of(self, layer: nn.Module) -> Site | None:
        return next((s for s in self.sites.values() if s.layer is layer), None)

    def _remember(self, output: torch.Tensor, call: _Call) -> None:
        self._outputs[id(output)] = (weakref.ref(output), call)

    def _producer(self, tensor: torch.Tensor) -> _Call | None:
        entry = self._outputs.get(id(tensor))
        if entry is None or entry[0]() is not tensor:
            return None
        return entry[1]

    def _known_nonnegative(self, x: torch.Tensor) -> bool:
        if _relu_output(x):
            return True
        ref = self._relu_outputs.get(id(x))
        return ref is not None and ref() is x

    def hook(self, site: Site):
        def forward_hook(module, inputs, output):
            if len(inputs) == 1 and output is inputs[0] and site.mask is None and type(site.rule) is Pass:
                # an in-place activation: its input already carries the activation's backward
                # (relevance reaches the input through it whatever this hook returns), so a
                # pass function on top would be an identity costing a node per call
                return None
            tensors = tuple(t for t in inputs if isinstance(t, torch.Tensor))
            if not isinstance(output, torch.Tensor) or not any(t.requires_grad for t in tensors):
                return None
            if len(tensors) != len(inputs):
                return None  # non-tensor inputs: leave the layer's gradient
            if isinstance(module, _BATCH_NORMS) and isinstance(site.rule, Pass):
                producer = self._producer(tensors[0])
                if (producer is not None and producer.norm is None and not module.training
                        and module.running_var is not None and isinstance(producer.site.layer, _AFFINE)
                        and _channels_match(producer.site.layer, tensors[0], module)):
                    producer.norm = module  # fold: relevance at the norm's output is the layer's
                    if producer.site.rule.uses_output:
                        producer.keep_output(output.detach())  # the folded layer's output
            values = output.detach()
            if isinstance(site.rule, Constant) and site.mask is None:
                # a constant (attention probabilities): the product that uses it is then a
                # linear map of its other operand, which the canonizers give the epsilon rule
                return values
            if type(site.rule) is Pass and len(tensors) == 1:
                new = _PassFunction.apply(site, [values], tensors[0])
                if isinstance(module, nn.ReLU):
                    self._relu_outputs[id(new)] = weakref.ref(new)
                return new
            nonneg = len(tensors) == 1 and site.rule.sign_aware and self._known_nonnegative(tensors[0])
            # the kept output is another tensor on the same storage and version counter: the one
            # returned gets the rule's node as grad_fn, and keeping it would make a cycle (call ->
            # output -> node -> call) that the collector cannot see through an in-place rebase
            call = _Call(site, tensors, values.detach() if site.rule.uses_output else None, nonneg)
            new = _RuleFunction.apply(call, [values], *tensors)
            self._remember(new, call)
            return new

        return forward_hook

    def clear(self) -> None:
        self._outputs.clear()
        self._relu_outputs.clear()


#: Autograd nodes whose output is ``>= 0`` (a ReLU's, in or out of place).
_NONNEG_NODES = frozenset({"ReluBackward0", "ReluBackward1"})


def _relu_output(x: torch.Tensor) -> bool:
    """Whether ``x`` is known to be ``>= 0`` without reading it: a ReLU made it (in place, as
    MONAI's are, the input of the next layer is the ReLU's output node). Sign-aware rules
    otherwise check with a reduction (a device synchronisation on a GPU)."""
    fn = x.grad_fn
    return fn is not None and fn.name() in _NONNEG_NODES


def _channels_match(layer: nn.Module, out: torch.Tensor, norm: nn.Module) -> bool:
    channels = layer.out_features if isinstance(layer, nn.Linear) else layer.out_channels
    if isinstance(layer, nn.Linear) and out.ndim != 2:
        return False
    return channels == norm.num_features


@contextmanager
def attached(model: nn.Module, composite: Composite, *, canonize: bool = True) -> Iterator[Attached]:
    """Attach LRP to ``model`` while the block runs; every change is undone on exit.

    Parameters
    ----------
    model : nn.Module
    composite : Composite
        Which rule each layer gets (:mod:`medlens.attribution.lrp.composites`).
    canonize : bool
        Split the relevance of residual additions written as ``a + b`` in a forward and, when
        a rule reuses its layer's output (epsilon, alpha-beta, gamma), turn in-place activations
        off for the block, so that no activation overwrites that output
        (:mod:`~medlens.attribution.lrp.canonizers`). Batch norms are always folded into the
        layer that feeds them.

    Yields
    ------
    Attached
        ``sites``: the ruled layers by name; set ``site.mask`` to condition on channels (CRP).
    """
    require_hooks(model, "LRP")
    refuse_recurrent_layers(model)
    state = Attached()
    assigned = list(composite.assign(model))
    with ExitStack() as stack:
        if canonize:
            # an in-place activation after a layer whose rule reuses its output would make that
            # rule recompute it (the kept output's version changed); otherwise in place is
            # cheaper (no new tensor per activation)
            if any(rule.uses_output and isinstance(layer, nn.modules.conv._ConvNd) for _, layer, rule in assigned):
                stack.enter_context(without_inplace(model))
            else:  # other in-place activations would scale the relevance by their own backward
                stack.enter_context(without_inplace(model, keep=(nn.ReLU,)))
            stack.enter_context(residual_sums(model, composite.stabilizer))
        stack.enter_context(constant_attention(model, composite.stabilizer))
        handles = []
        stack.callback(_forget_transient, [layer for _, layer, _ in assigned])
        stack.callback(lambda: [h.remove() for h in handles])
        stack.callback(state.clear)
        for name, layer, rule in assigned:
            site = Site(name, layer, rule)
            state.sites[name] = site
            handles.append(layer.register_forward_hook(state.hook(site)))
        handles.append(model.register_forward_pre_hook(lambda *_: state.clear()))
        yield state
