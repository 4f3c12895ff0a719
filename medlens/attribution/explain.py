"""``explain``: run a registered attribution method on a batch and wrap the result."""

from __future__ import annotations

import time
from typing import Any

import torch
from torch import nn

from medlens.attribution.registry import MethodInfo, method_call_options, get_method, method_names
from medlens.core import engine
from medlens.core.checks import check_fits_model, check_input, evaluation_mode, model_failures_named, model_outputs
from medlens.core.engine import Budget
from medlens.core.targets import PredictedTarget, TargetLike, to_target
from medlens.core.hooks import NO_HOOKS_ON_TORCHSCRIPT, eager_modules, is_torchscript
from medlens.errors import InputError
from medlens.types import Attribution


def methods(*, model_specific: bool = False) -> list[str]:
    """Names of the registered attribution methods, usable as ``explain(method=...)``.

    By default the methods that explain any model; ``model_specific=True`` adds those that need
    a particular architecture (``attention_gates`` needs an attention-gated network).
    """
    return method_names(model_specific=model_specific)


def check_runnable(model: nn.Module, method: str, options: dict[str, Any] | None = None) -> None:
    """Refuse, in one line, a method that cannot explain ``model``: one that reads layers, on a
    TorchScript model (module hooks do not run there). :func:`explain` calls it; commands call it
    before reading any data.

    Raises
    ------
    InputError
    """
    if is_torchscript(model) and get_method(method).reads_layers(options):
        raise InputError(f"{method} {NO_HOOKS_ON_TORCHSCRIPT}")


def runnable_methods(model: nn.Module, names: list[str], options: dict[str, dict[str, Any]] | None = None
                     ) -> tuple[list[str], str | None]:
    """``names`` less the methods that cannot explain ``model`` (those that read layers, on a
    TorchScript model), and a note naming what was left out (``None`` when nothing was)."""
    if not is_torchscript(model):
        return list(names), None
    kept = [m for m in names if not get_method(m).reads_layers((options or {}).get(m))]
    left = [m for m in names if m not in kept]
    return kept, (f"left out {', '.join(left)} for this TorchScript model: each {NO_HOOKS_ON_TORCHSCRIPT}" if left else None)


def explain(
    model: nn.Module,
    x: torch.Tensor,
    target: TargetLike = None,
    method: str = "gradient",
    *,
    batch_size: int | None = None,
    memory_mb: float | None = None,
    **options: Any,
) -> Attribution:
    """Explain the model's decision for each input of a batch.

    Parameters
    ----------
    model : nn.Module
        A classifier returning ``(B, K)`` scores. It is run in eval mode; its training
        flags are restored afterwards. A ``torch.compile``'d model, or compiled part of one,
        is explained through the module it compiled (module hooks do not run in the compiled
        graph).
    x : torch.Tensor
        ``(B, C, L)`` signals, ``(B, C, H, W)`` images or ``(B, C, D, H, W)`` volumes, of any
        real dtype: the model gets the same values in its own floating dtype (int16 CT in
        Hounsfield units reaches a float32 model as float32), and the map has that dtype.
    target : int, sequence, tensor, Target, callable or None
        Class to explain (one for all, or one per sample), or a callable from model output to
        one score per sample. ``None`` explains the predicted class.
    method : str
        A name from :func:`methods`.
    batch_size, memory_mb : optional
        How many inputs the engine evaluates at once (see :class:`medlens.core.engine.Budget`).
    **options
        Method options, e.g. ``abs=True`` for ``gradient``.

    Returns
    -------
    Attribution

    Notes
    -----
    An explicit target costs no extra model evaluation: the input's shape, the outputs'
    finiteness and the target's range are checked inside the method's own first chunk. With
    ``target=None`` a one-pass method that evaluates the unmodified inputs (gradient, grad x
    input, Grad-CAM, Grad-CAM++) reads the predicted class from that pass; every other method
    needs a forward pass of the batch first, to find the predicted classes.
    """
    info = get_method(method)
    known = info.options()
    method_call_options(method, options)
    check_runnable(model, method, options)
    x = check_input(x)
    check_fits_model(model, x)
    budget = Budget(batch_size, memory_mb)
    # inside the caller's torch.inference_mode() nothing could be differentiated: leave it, with a
    # normal copy of an inference-tensor input
    with eager_modules(model) as model, evaluation_mode(model), torch.inference_mode(False):
        x = engine.model_input(model, x)
        x = x.clone() if x.is_inference() else x
        with model_failures_named(model, x):
            result, tgt, recorded, seconds = _run(info, model, x, target, budget, options)
    values, extras = result if isinstance(result, tuple) else (result, {})
    extras = dict(extras)
    recorded.update(extras.pop("chosen", {}))  # defaults chosen from the model's cost
    return Attribution(
        values=values.detach(),
        method=method,
        target=tgt.class_indices(len(x)).cpu(),
        params={**known, **options, **recorded},
        seconds=seconds,
        extras=extras,
    )


def _run(info: MethodInfo, model: nn.Module, x: torch.Tensor, target: TargetLike, budget: Budget,
         options: dict[str, Any]) -> tuple[Any, Any, dict[str, Any], float]:
    """The method's result, its target, the options chosen for it (the CAM layer) and its seconds."""
    in_pass = target is None and info.reads_prediction  # the method's own pass finds the predicted class
    outputs = model_outputs(model, x, budget) if target is None and not in_pass else None
    tgt = PredictedTarget(len(x)) if in_pass else to_target(target, outputs, batch=len(x))
    call_options, recorded = dict(options), {}
    if info.layer_resolution and "layer" in info.options():
        call_options["layer"], recorded["layer"] = _cam_layer(model, x, options.get("layer"))
    start = time.perf_counter()
    result = info.fn(model, x, tgt, budget=budget, **call_options)
    return result, tgt, recorded, time.perf_counter() - start


def _cam_layer(model: nn.Module, x: torch.Tensor, layer: Any) -> tuple[nn.Module, str]:
    """The CAM layer (given, or the default) and its dotted name.

    medlens's own architectures define their modules in execution order, so the default is read
    from the module list (:func:`~medlens.attribution.cam.default_cam_layer`) at no cost; any
    other model gets :func:`~medlens.attribution.cam.probe_cam_layer`, one forward pass of a
    single sample, which finds the layer whatever the definition order.
    """
    from medlens.attribution.cam import default_cam_layer, probe_cam_layer
    from medlens.attribution.transformer.attention_maps import has_attention_layers
    from medlens.core.hooks import layer_name, resolve_layer

    if layer is None:
        if _is_medlens_architecture(model) and not has_attention_layers(model):  # a ViT's: probe_cam_layer
            module = default_cam_layer(model)
            return module, layer_name(model, module)
        name, module = probe_cam_layer(model, x)
        return module, name
    module = resolve_layer(model, layer)
    return module, layer_name(model, module)


def _is_medlens_architecture(model: nn.Module) -> bool:
    """Built by a registered medlens architecture (it carries ``arch`` and ``config``)."""
    from medlens.models.io import ARCHITECTURES

    arch = getattr(model, "arch", None)
    return isinstance(arch, str) and isinstance(getattr(model, "config", None), dict) and arch in ARCHITECTURES
