"""Layer access: find a layer by name, capture its activations and gradients.

Hooks exist only inside the :func:`capture` context manager, which removes them in a
``finally`` block, so no hook outlives a method, also when the method raises.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from medlens.core.layers import CONV_TYPES  # re-exported: the convolution layers of every rank
from medlens.errors import InputError, UnknownNameError

#: Why a method that reads layers cannot explain a TorchScript model, and what to do instead.
NO_HOOKS_ON_TORCHSCRIPT = (
    "reads a layer's activations through module hooks, which PyTorch does not run on a TorchScript "
    "model; use a gradient or perturbation method, or give the model as a medlens model file "
    "(medlens.models.save_model) or as a Python nn.Module"
)


def is_torchscript(model: nn.Module) -> bool:
    """Whether ``model`` is, or wraps, a TorchScript module: module hooks never run inside one,
    and a Python wrapper around it (a segmentation target's ``ReducedOutput``, a sliding-window
    inferer) changes nothing about that."""
    return any(isinstance(m, torch.jit.ScriptModule) for m in model.modules())


@contextmanager
def eager_modules(model: nn.Module) -> Iterator[nn.Module]:
    """``model`` with every ``torch.compile``'d part run as the Python module it compiled, for the
    block; yields the model to use (a compiled model's original module).

    A compiled graph does not run module hooks registered after it was compiled, so a method
    that reads layers (LRP, CRP, the CAM family) would get nothing, or silently another map,
    from a compiled model or a compiled backbone inside one. The eager modules compute the same
    function with their hooks; the compiled submodules are put back after the block.
    """
    dynamo = sys.modules.get("torch._dynamo")  # never imported: nothing can have been compiled
    if dynamo is None:
        yield model
        return
    compiled = [(parent, name, child) for parent in model.modules() for name, child in parent._modules.items()
                if isinstance(child, dynamo.OptimizedModule)]
    try:
        for parent, name, child in compiled:
            parent._modules[name] = child._orig_mod
        yield model._orig_mod if isinstance(model, dynamo.OptimizedModule) else model
    finally:
        for parent, name, child in reversed(compiled):
            parent._modules[name] = child


def require_hooks(model: nn.Module, what: str = "this method") -> None:
    """Raise ``InputError`` (one line) when ``model`` is, or wraps, TorchScript, on which hooks never run."""
    if is_torchscript(model):
        raise InputError(f"{what} {NO_HOOKS_ON_TORCHSCRIPT}")

LayerLike = "nn.Module | str"


def resolve_layer(model: nn.Module, layer: nn.Module | str) -> nn.Module:
    """The submodule ``layer`` of ``model``: a module, or its dotted name (``"features.3"``; a name
    read off a ``torch.compile``'d model or backbone, with its ``_orig_mod`` parts, names the same
    module: methods run such a model as the modules it compiled, :func:`eager_modules`)."""
    if isinstance(layer, nn.Module):
        if not any(m is layer for m in model.modules()):
            raise UnknownNameError("the given layer module is not part of the model")
        return layer
    modules = dict(model.named_modules())
    if layer not in modules and _passes_through(model):  # a wrapper's layers are named as its model names them
        return resolve_layer(model.model, layer)
    if layer not in modules:  # a name read off a torch.compile'd model, explained as its eager modules
        layer = ".".join(part for part in layer.split(".") if part != "_orig_mod") if isinstance(layer, str) else layer
    if layer not in modules:
        names = [n for n in modules if n]
        hint = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
        raise UnknownNameError(f"the model has no layer named {layer!r}; layers: {hint}")
    return modules[layer]


def _passes_through(model: nn.Module) -> bool:
    """Whether ``model`` is a medlens wrapper around ``model.model`` (:class:`~medlens.core.targets.MultiLabel`,
    :class:`~medlens.core.targets.ReducedOutput`): a layer name of the model it wraps names the same layer."""
    from medlens.core.targets import MultiLabel, ReducedOutput

    return isinstance(model, (MultiLabel, ReducedOutput))


def layer_name(model: nn.Module, layer: nn.Module) -> str:
    for name, module in model.named_modules():
        if module is layer:
            return name
    raise UnknownNameError("the given layer module is not part of the model")


def conv_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """All convolution layers in definition order, as ``(dotted name, module)``."""
    return [(n, m) for n, m in model.named_modules() if isinstance(m, CONV_TYPES)]


def last_conv_layer(model: nn.Module) -> nn.Module:
    """The default layer for class activation maps: the last convolution of the model."""
    convs = conv_layers(model)
    if not convs:
        raise UnknownNameError("the model has no convolution layer; pass layer= explicitly")
    return convs[-1][1]


class Capture:
    """What :func:`capture` recorded during the last forward (and backward) pass.

    Attributes
    ----------
    activation : torch.Tensor or None
        The layer output of the last forward pass, ``(B, C, *spatial)``.
    gradient : torch.Tensor or None
        Gradient of the backpropagated scalar with respect to that output (same shape), set
        during backward when ``gradients=True``.
    """

    def __init__(self) -> None:
        self.activation: torch.Tensor | None = None
        self.gradient: torch.Tensor | None = None


@contextmanager
def capture(
    model: nn.Module, layer: nn.Module | str, *, gradients: bool = False, detach: bool = True
) -> Iterator[Capture]:
    """Record a layer's output (and its gradient) while the block runs.

    Parameters
    ----------
    model : nn.Module
    layer : nn.Module or str
        The layer or its dotted name.
    gradients : bool
        Also record the gradient flowing into the layer output during backward.
    detach : bool
        Store detached activations. ``detach=False`` keeps the graph, for objectives that
        are differentiated (feature visualization).

    The rest of the model receives a copy of a tensor output, so an in-place operation after the
    layer (``ReLU(inplace=True)``) cannot change what is recorded or where a gradient is taken.
    """
    require_hooks(model)
    module = resolve_layer(model, layer)
    record = Capture()

    def forward_hook(_module, _inputs, output):
        whole = output
        if isinstance(output, tuple):
            output = output[0]
        record.activation = output.detach() if detach else output
        if gradients and output.requires_grad:

            def grad_hook(grad):
                record.gradient = grad.detach()

            output.register_hook(grad_hook)
        if isinstance(whole, torch.Tensor):
            # the rest of the model gets a copy: an in-place operation after the layer (a
            # ReLU(inplace=True) after a convolution) would otherwise change the recorded output,
            # and a gradient taken at it would be the gradient at that operation's output
            return whole.clone()
        return None

    handle = module.register_forward_hook(forward_hook)
    try:
        yield record
    finally:
        handle.remove()


@contextmanager
def on_leaf_calls(model: nn.Module, record: Callable[[nn.Module, Any, Any], None]) -> Iterator[None]:
    """Call ``record(module, inputs, output)`` after every leaf module call during the block.

    For probes that trace a whole forward pass (activation sizes, execution order); what is
    kept is up to ``record``, so a probe that only needs sizes holds no activations.

    Raises
    ------
    InputError
        ``model`` is a TorchScript model (:func:`require_hooks`).
    """
    require_hooks(model)
    handles = [m.register_forward_hook(record) for m in model.modules() if not list(m.children())]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


class _OpOutputs(TorchDispatchMode):
    """Calls ``record(None, args, output)`` after every operator that computes a new tensor."""

    def __init__(self, record: Callable[[Any, Any, Any], None]) -> None:
        super().__init__()
        self.record = record

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        if not func.is_view:  # views share their base's memory
            self.record(None, args, out)
        return out


@contextmanager
def on_activations(model: nn.Module, record: Callable[[Any, Any, Any], None]) -> Iterator[None]:
    """:func:`on_leaf_calls` where a model allows module hooks; for a TorchScript model (or one
    wrapping it), which does not, ``record(None, inputs, output)`` after every operator that makes a new tensor
    (a leaf layer is one or two operators, so sizes come out alike or somewhat larger)."""
    if is_torchscript(model):
        with _OpOutputs(record):
            yield
    else:
        with on_leaf_calls(model, record):
            yield


def count_hooks(model: nn.Module) -> int:
    """Number of forward/backward hooks registered on any submodule (for leak checks)."""
    total = 0
    for m in model.modules():
        total += len(m._forward_hooks) + len(m._forward_pre_hooks)
        total += len(m._backward_hooks) + len(getattr(m, "_backward_pre_hooks", {}))
    return total
