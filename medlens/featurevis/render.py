"""The optimisation loop of feature visualisation: gradient ascent in input space.

``x* = argmax_x h(theta, x)`` with the model's parameters ``theta`` fixed (Erhan et al.,
"Visualizing higher-layer features of a deep network", 2009), regularised by a
parameterisation (:mod:`medlens.featurevis.param`) and random transforms
(:mod:`medlens.featurevis.transforms`), as in Olah et al., "Feature Visualization", Distill 2017.

Unlike attribution methods, this is not a batch of independent model evaluations but one
optimisation, so :func:`render` calls the model itself, step after step, on the whole batch of
images being optimised. Guarantees:

* the model runs in eval mode (training flags restored afterwards); a ``torch.compile``'d model,
  or compiled part, runs as the module it compiled, so layers are named and hooked as in it;
* activations are recorded only inside :func:`medlens.core.hooks.capture` blocks, removed also
  when the run fails;
* gradients are taken with :func:`torch.autograd.grad` with respect to the parameterisation
  only: the model's parameters are never changed and no ``.grad`` is left on them.
"""

from __future__ import annotations

import numbers
from contextlib import ExitStack
from typing import NamedTuple, Sequence

import torch
from torch import nn

from medlens.core.random import generator
from medlens.core.checks import evaluation_mode
from medlens.core import engine
from medlens.core.engine import Budget, model_device
from medlens.core.hooks import capture, eager_modules, is_torchscript, resolve_layer
from medlens.errors import InputError, UnknownNameError
from medlens.featurevis.objectives import Objective, Probe, per_image
from medlens.featurevis.param import PARAMETERISATIONS, FourierImage, PixelImage
from medlens.featurevis.relu import redirected_relu_gradients
from medlens.featurevis.transforms import BlurEvery, apply, default_transforms


class Rendering(NamedTuple):
    """Result of :func:`render`.

    Attributes
    ----------
    images : torch.Tensor
        The optimised inputs, ``shape`` = ``(B, C, *spatial)``, in the model's input range.
    values : torch.Tensor
        ``(steps, B)``: the objective of each image at each step, measured on the randomly
        transformed input the step optimised.
    """

    images: torch.Tensor
    values: torch.Tensor


def require_layer_hooks(model: nn.Module, layers: Sequence) -> None:
    """Refuse, in one line, objectives that read layers of a TorchScript model (PyTorch runs no
    module hooks inside one): the class objectives need no layer."""
    if layers and is_torchscript(model):
        raise InputError(
            "layer objectives (neuron, channel, layer, direction, diversity) read activations through module hooks, "
            "which PyTorch does not run on a TorchScript model; logit, probability and output objectives need no "
            "layer, or give the model as a medlens model file (medlens.models.save_model) or a Python nn.Module"
        )


def _model_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    for b in model.buffers():
        if b.is_floating_point():
            return b.dtype
    return torch.get_default_dtype()


def _as_objective(objective: Objective | Sequence[Objective], batch: int) -> Objective:
    if isinstance(objective, Objective):
        return objective
    if isinstance(objective, (list, tuple)):
        if len(objective) != batch:
            raise InputError(
                f"{len(objective)} objectives need a batch of {len(objective)} images, but shape has {batch}"
            )
        return per_image(objective)
    raise InputError(f"objective must be an Objective or a list of them, got {type(objective).__name__}")


def _check_shape(model: nn.Module, shape: Sequence[int]) -> tuple[int, ...]:
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise InputError(f"shape must be a sequence of integers (batch, channels, *spatial), got {shape!r}") from None
    if not 3 <= len(shape) <= 5 or min(shape) < 1:
        raise InputError(f"shape must be (batch, channels, *spatial) with 1 to 3 spatial dims, got {shape}")
    expected = getattr(model, "input_shape", None)
    if expected is not None and tuple(shape[1:]) != tuple(expected):
        raise InputError(
            f"shape {shape} does not fit the model, which expects (batch, {', '.join(map(str, expected))})"
        )
    return shape


def make_param(
    param: str | FourierImage | PixelImage, shape: Sequence[int], input_range: tuple[float, float], *,
    generator: torch.Generator, decorrelate: torch.Tensor | None, dtype: torch.dtype, device: torch.device,
):
    """A parameterisation from its name (``"fourier"``, ``"pixel"``) or a ready instance."""
    if isinstance(param, str):
        return PARAMETERISATIONS.get(param)(shape, input_range, generator=generator, decorrelate=decorrelate,
                                        dtype=dtype, device=device)
    if not hasattr(param, "params") or not callable(param):
        raise InputError(f"param must be 'fourier', 'pixel' or a parameterisation, got {type(param).__name__}")
    if tuple(param.shape) != tuple(shape):
        raise InputError(f"the parameterisation has shape {tuple(param.shape)}, render was asked for {tuple(shape)}")
    return param


def _transforms(transforms, spatial: Sequence[int]) -> list:
    if transforms is None:
        return []
    if isinstance(transforms, str):
        if transforms == "default":
            return default_transforms(spatial)
        if transforms == "none":
            return []
        raise UnknownNameError(f"unknown transforms {transforms!r}; use 'default', 'none' or a list of transforms")
    transforms = list(transforms)
    for t in transforms:
        if not (callable(t) or isinstance(t, BlurEvery)):
            raise InputError(f"transforms must be callables t(x, generator), got {type(t).__name__}")
    return transforms


def render(
    model: nn.Module,
    objective: Objective | Sequence[Objective],
    shape: Sequence[int],
    steps: int = 256,
    lr: float = 0.05,
    param: str | FourierImage | PixelImage = "fourier",
    transforms: str | Sequence | None = "default",
    seed: int = 0,
    *,
    input_range: tuple[float, float] = (0.0, 1.0),
    decorrelate: torch.Tensor | None = None,
    redirect_relu: bool = True,
) -> Rendering:
    """Find inputs that maximise ``objective`` by gradient ascent (activation maximisation).

    Parameters
    ----------
    model : nn.Module
        Any differentiable model; it is run in eval mode and left unchanged.
    objective : Objective or list of Objective
        What to maximise (see :mod:`medlens.featurevis.objectives`). One objective is shared by
        every image (its value is per image); a list of ``B`` objectives puts objective ``i``
        on image ``i`` (e.g. 16 channels of a layer in one batched run).
    shape : sequence of int
        ``(B, C, *spatial)`` of the inputs to optimise (1 to 3 spatial dims).
    steps : int
        Optimisation steps (the parameterisation's optimiser: Adam for pixels,
        :class:`~medlens.featurevis.param.ImageAdam` for the Fourier spectrum).
    lr : float
        Learning rate on the parameterisation.
    param : {"fourier", "pixel"} or a parameterisation instance
        ``"fourier"``: spectrum scaled by ``1/|f|^0.5``
        (:data:`~medlens.featurevis.param.RENDER_DECAY_POWER`), optimised with per-image
        normalised Adam, and colour decorrelation when ``decorrelate`` is given; it recovers
        planted detectors from 3- to 12-pixel periods about as well as pixels. ``"pixel"``: one
        parameter per element, Adam. Pass ``FourierImage(shape, decay_power=1.0)`` for Lucid's 1/f.
    transforms : "default", "none", None or list
        Random transforms applied at every step (:func:`~medlens.featurevis.transforms.default_transforms`:
        jitter, scale, rotation). A list may also hold ``BlurEvery(k, sigma)``.
    seed : int
        Seeds the initial image and every random transform: same seed, same images.
    input_range : (float, float)
        The model's valid input range; images are mapped into it with a sigmoid.
    decorrelate : torch.Tensor, optional
        For multi-channel inputs: a ``(C, C)`` channel-mixing matrix, or data samples
        ``(N, C, *spatial)`` to estimate it from (:func:`~medlens.featurevis.param.channel_correlation_sqrt`).
    redirect_relu : bool
        Let gradient through ``nn.ReLU`` layers for images that get none (units silent on the
        starting image would otherwise never move; :mod:`medlens.featurevis.relu`). Forward
        values are unchanged, so the objective values are exact.

    Returns
    -------
    Rendering
        ``(images, values)``: images ``(B, C, *spatial)`` in ``input_range``, objective values
        ``(steps, B)`` per step.

    Raises
    ------
    InputError, UnknownNameError, TargetError
        Bad shape, settings, layer names, channel or class indices.
    """
    shape = _check_shape(model, shape)
    objective = _as_objective(objective, shape[0])
    if not isinstance(steps, numbers.Integral) or steps < 1:
        raise InputError(f"steps must be a positive integer, got {steps!r}")
    if not (isinstance(lr, numbers.Real) and lr > 0):
        raise InputError(f"lr must be a positive number, got {lr!r}")
    if not isinstance(seed, numbers.Integral):
        raise InputError(f"seed must be an integer, got {seed!r}")
    device, dtype = model_device(model), _model_dtype(model)
    gen = generator(int(seed), "render")
    pipeline = _transforms(transforms, shape[2:])
    blurs = [t for t in pipeline if isinstance(t, BlurEvery)]

    with ExitStack() as stack:
        # a torch.compile'd model runs as the module it compiled: its layer names, its hooks
        model = stack.enter_context(eager_modules(model))
        # resolve every layer before any work, so a wrong name fails at once
        require_layer_hooks(model, objective.layers)
        layers = {ref if isinstance(ref, str) else id(ref): (ref, resolve_layer(model, ref)) for ref in objective.layers}
        # also when the caller is in inference_mode / no_grad: the parameters must be ordinary
        # tensors that record a graph
        stack.enter_context(torch.inference_mode(False))
        stack.enter_context(torch.enable_grad())
        image_fn = make_param(param, shape, input_range, generator=gen, decorrelate=decorrelate,
                              dtype=dtype, device=device)
        # each parameterisation picks the optimiser that suits its basis (Adam for pixels,
        # per-image normalised Adam for the Fourier spectrum; see medlens.featurevis.param)
        make_optimizer = getattr(image_fn, "optimizer", None)
        optimizer = (make_optimizer(float(lr)) if callable(make_optimizer)
                     else torch.optim.Adam(image_fn.params, lr=float(lr)))
        values = torch.empty(steps, shape[0], dtype=torch.float64)
        stack.enter_context(evaluation_mode(model))
        if redirect_relu:
            # before the captures: they must record the redirected outputs
            stack.enter_context(redirected_relu_gradients(model))
        records = {}
        for _ref, module in layers.values():
            if module not in records:
                records[module] = stack.enter_context(capture(model, module, gradients=False, detach=False))
        for step in range(steps):
            image = image_fn()
            # the scores as every method reads them (a tuple's first element, a (B,) logit as (B, 1));
            # a model that cannot take the shape says so in one line
            output = engine.checked_call(model, apply(pipeline, image, gen), first=step == 0, finite=False)
            acts = {}
            for ref, module in layers.values():
                acts[module] = acts[ref] = records[module].activation
            probe = Probe(model, image, output, acts, image_fn.input_range)
            value = objective(probe)
            if value.shape != (shape[0],):
                raise InputError(
                    f"objective {objective.name} returned shape {tuple(value.shape)}, expected ({shape[0]},)"
                )
            grads = torch.autograd.grad(-value.sum(), image_fn.params)
            for p, g in zip(image_fn.params, grads):
                p.grad = g
            optimizer.step()
            values[step] = value.detach().double().cpu()
            for blur in blurs:
                if (step + 1) % int(blur.every) == 0:
                    image_fn.blur_(blur.sigma)
        with torch.no_grad():
            images = image_fn().detach()
    return Rendering(images, values)


def objective_values(
    model: nn.Module, objective: Objective | Sequence[Objective], images: torch.Tensor, *,
    input_range: tuple[float, float] = (0.0, 1.0),
) -> torch.Tensor:
    """The objective's value ``(B,)`` for given inputs ``(B, C, *spatial)``, without transforms.

    Useful to score what :func:`render` returned (e.g. the class probability reached). The
    model runs once on the whole batch, in eval mode, with activations recorded inside
    :func:`~medlens.core.hooks.capture` blocks.
    """
    if not isinstance(images, torch.Tensor) or images.ndim < 3:
        raise InputError("images must be a tensor (batch, channels, *spatial)")
    objective = _as_objective(objective, images.shape[0])
    with ExitStack() as stack:
        model = stack.enter_context(eager_modules(model))
        require_layer_hooks(model, objective.layers)
        layers = [(ref, resolve_layer(model, ref)) for ref in objective.layers]
        stack.enter_context(torch.no_grad())
        stack.enter_context(evaluation_mode(model))
        records = {}
        for _, module in layers:
            if module not in records:
                records[module] = stack.enter_context(capture(model, module, gradients=False))
        x = images.to(device=model_device(model), dtype=_model_dtype(model))
        output = engine.checked_call(model, x, first=True, finite=False)
        acts = {}
        for ref, module in layers:
            acts[module] = acts[ref] = records[module].activation
        return objective(Probe(model, x, output, acts, tuple(float(v) for v in input_range))).detach()


def objective_values_over(
    model: nn.Module, objectives: Sequence[Objective], inputs: torch.Tensor, *,
    input_range: tuple[float, float] = (0.0, 1.0), batch_size: int | None = None, memory_mb: float | None = None,
) -> torch.Tensor:
    """Every objective on every real input: ``(N, len(objectives))``.

    The yardstick for a visualisation: a rendered input should excite its unit more than any
    real case does. Runs through the batched engine (memory-bounded chunks); the objectives must
    treat rows independently (not :func:`~medlens.featurevis.objectives.per_image` or
    ``diversity``).
    """
    budget = Budget(batch_size, memory_mb)
    if not isinstance(inputs, torch.Tensor) or inputs.ndim < 3:
        raise InputError("inputs must be a tensor (N, channels, *spatial)")
    objectives = list(objectives)
    if not objectives or not all(isinstance(o, Objective) for o in objectives):
        raise InputError("objectives must be a non-empty list of Objective")
    refs = []
    for o in objectives:
        refs.extend(o.layers)
    out = torch.empty(len(inputs), len(objectives), dtype=torch.float64)
    lo, hi = (float(v) for v in input_range)
    with ExitStack() as stack:
        model = stack.enter_context(eager_modules(model))
        require_layer_hooks(model, refs)
        layers = [(ref, resolve_layer(model, ref)) for ref in refs]
        stack.enter_context(evaluation_mode(model))
        records = {}
        for _, module in layers:
            if module not in records:
                records[module] = stack.enter_context(capture(model, module, gradients=False))

        def consume(start: int, stop: int, outputs: torch.Tensor, _grads, x: torch.Tensor) -> None:
            # the records hold this chunk's activations: consume runs right after its forward pass
            acts = {}
            for ref, module in layers:
                acts[module] = acts[ref] = records[module].activation
            probe = Probe(model, x, outputs, acts, (lo, hi))
            for j, o in enumerate(objectives):
                out[start:stop, j] = o(probe).double().cpu()

        def build(start: int, stop: int):
            x = inputs[start:stop].to(device=model_device(model), dtype=_model_dtype(model))
            return x, x

        engine.run(model, len(inputs), build, consume=consume, budget=budget)
    return out
