"""Class activation maps from a layer's activations and gradients.

``gradcam``: Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
Gradient-based Localization" (ICCV 2017): channel weights are the spatial mean of the gradient
of the class score, ``L = ReLU(sum_k w_k A_k)``.

``gradcam_pp``: Chattopadhay, Sarkar, Howlader and Balasubramanian, "Grad-CAM++: Generalized
Gradient-Based Visual Explanations for Deep Convolutional Networks" (WACV 2018): channel
weights ``w_k = sum_ij alpha_kij ReLU(dY/dA_kij)`` with the closed form
``alpha_kij = g_kij^2 / (2 g_kij^2 + g_kij^3 sum_ab A_kab)`` for ``Y = exp(S)`` and
``g = dS/dA`` (the paper's eq. 19).

One shape-generic implementation serves 1D, 2D and 3D layers (``(B, K, *spatial)``); the layer
is any module (``layer=`` the module or its dotted name; default: the output of the last
convolution after the normalisation and activation that follow it).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medlens.core import engine
from medlens.core.engine import Budget
from medlens.core.hooks import CONV_TYPES, capture, last_conv_layer, on_leaf_calls, resolve_layer
from medlens.attribution.registry import register
from medlens.attribution.transformer.attention_maps import attention_internals, attention_layers
from medlens.attribution.transformer.tokens import feature_maps, is_token_layer
from medlens.core.resize import upsample_to
from medlens.core.targets import Target
from medlens.errors import InputError, UnknownNameError

Weighting = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _spatial_dims(t: torch.Tensor) -> tuple[int, ...]:
    return tuple(range(2, t.ndim))


def gradcam_weights(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Grad-CAM channel weights ``(B, K, 1, ...)``: spatial mean of the gradient."""
    return gradient.mean(dim=_spatial_dims(gradient), keepdim=True)


def gradcam_pp_weights(activation: torch.Tensor, gradient: torch.Tensor) -> torch.Tensor:
    """Grad-CAM++ channel weights ``(B, K, 1, ...)`` (paper eq. 19 with ``Y = exp(S)``).

    ``alpha_ij = g_ij^2 / (2 g_ij^2 + g_ij^3 sum_ab A_ab)``, the paper's formula: the sum of the
    activations multiplies the third power of the gradient at ``ij``. (Some implementations
    sum ``A_ab g_ab^3`` instead, which is not the paper's expression.) The paper's weights
    also carry a factor ``exp(S)`` per sample (``dY/dA = exp(S) dS/dA``); it is a positive
    constant per map that overflows for large logits and does not change the map's shape,
    so it is left out, as in most implementations.
    """
    dims = _spatial_dims(gradient)
    g2 = gradient * gradient
    denominator = 2 * g2 + g2 * gradient * activation.sum(dim=dims, keepdim=True)
    # where the denominator vanishes the numerator does too: alpha = 0 there
    alpha = g2 / torch.where(denominator != 0, denominator, torch.ones_like(denominator))
    return (alpha * F.relu(gradient)).sum(dim=dims, keepdim=True)


# modules that keep a feature map's shape and meaning: what follows a convolution in a stage
_ELEMENTWISE = (
    nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm, nn.modules.dropout._DropoutNd, nn.Identity,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish,
    nn.Softplus, nn.Tanh, nn.Sigmoid, nn.Hardswish, nn.Hardtanh, nn.Hardsigmoid,
)


def default_cam_layer(model: nn.Module) -> nn.Module:
    """The rectified output of the last convolution: Grad-CAM's default layer.

    Grad-CAM weighs "the feature maps of the last convolutional layer", i.e. after their
    non-linearity. Starting from the last convolution (in definition order, like
    :func:`medlens.core.hooks.last_conv_layer`), the normalisation, activation and dropout
    modules defined right after it are followed; the last of them is the layer. For the
    reference CNN this is ``features.block{n}.act``, whose Grad-CAM is the class activation
    map. Decided from the module list alone (no probe pass); pass ``layer=`` when the model's
    definition order differs from its execution order.
    """
    modules = [m for m in model.modules() if not list(m.children())]
    convs = [i for i, m in enumerate(modules) if isinstance(m, CONV_TYPES)]
    if not convs:
        return last_conv_layer(model)  # raises the "no convolution layer" error
    chosen = modules[convs[-1]]
    for module in modules[convs[-1] + 1 :]:
        if not isinstance(module, _ELEMENTWISE):
            break
        chosen = module
    return chosen


def is_feature_map(module: nn.Module, shape: Sequence[int], rank: int, internals: set[nn.Module]) -> bool:
    """Whether a module's output of ``shape``, in a probe pass of ONE sample, is a feature map of
    that sample: ``(1, K, *spatial)`` of the input's ``rank`` with more than one location (a
    global pooling output is not a map), from a module outside the model's attention layers
    (``internals``, :func:`~medlens.attribution.transformer.attention_maps.attention_internals`):
    MONAI's attention moves q, k, v in front of the batch, ``(3, 1, heads, N, d)``, with a
    volume's rank, and its weights ``(1, heads, N, N)`` have an image's."""
    return (len(shape) == rank and shape[0] == 1 and math.prod(shape[2:]) > 1
            and module not in internals)


def probe_cam_layer(model: nn.Module, x: torch.Tensor) -> tuple[str, nn.Module]:
    """The last layer whose output keeps the input's spatial rank, found by one forward pass.

    The rule of torchcam's ``locate_candidate_layer`` and M3d-CAM's automatic layer choice: in
    execution order, the last module whose output is a map of the sample (:func:`is_feature_map`:
    ``(B, C, *spatial)`` with as many spatial axes as the input and not all of them of size 1,
    not an attention layer's internals; on a ViT, the patch embedding's grid). It
    works on any architecture (MONAI's DenseNet, ResNet, SEResNet, UNet, TorchScript files),
    whatever the definition order. When containers return the tensor a child produced, the
    innermost module that produced it is named; an in-place activation (``ReLU(inplace=True)``)
    counts as producing a new map, so the rectified maps are chosen, as Grad-CAM intends.

    Parameters
    ----------
    model : nn.Module
    x : torch.Tensor
        An input ``(B, C, *spatial)``; only its first sample is run.

    Returns
    -------
    (str, nn.Module)
        The layer's dotted name and the module.

    Raises
    ------
    UnknownNameError
        No layer keeps the spatial rank: pass ``layer=`` explicitly.
    """
    rank = x.ndim
    names = {m: n for n, m in model.named_modules() if n}
    seen: list[tuple[torch.Tensor, int, nn.Module]] = []  # the outputs are held so no id is reused
    tokens: list[tuple[int, nn.Module]] = []  # (feature maps seen before it, module) per token output
    layers = attention_layers(model)
    internals = attention_internals(model)
    last_attention = set(layers[-1][1].modules()) if layers else set()
    before_last_attention: list[tuple[int, nn.Module]] = []

    def record(module: nn.Module, _inputs: Any, output: Any) -> None:
        if not isinstance(output, torch.Tensor):
            return
        if module in last_attention and not before_last_attention:
            before_last_attention.extend(tokens)  # the token layers up to the last attention's input
        if is_feature_map(module, output.shape, rank, internals):
            seen.append((output, output._version, module))
        elif module not in internals and output.ndim == 3 and output.shape[0] == 1 and is_token_layer(output, x.shape[2:]):
            tokens.append((len(seen), module))

    with on_leaf_calls(model, record), torch.no_grad():
        model(x[:1])
    if before_last_attention and before_last_attention[-1][0] == len(seen):
        # a vision transformer whose last map is its patch embedding: Grad-CAM reads the tokens
        # that enter the last attention layer (its norm), as pytorch-grad-cam's ViT recipe does;
        # after it only the class token reaches the output, so the patch tokens get no gradient
        module = before_last_attention[-1][1]
        return names.get(module, ""), module
    if not seen:
        raise UnknownNameError("the model has no convolution or other layer whose output keeps the input's spatial rank; pass layer= explicitly")
    last, version, _ = seen[-1]
    module = next(m for t, v, m in seen if t is last and v == version)
    return names.get(module, ""), module


def resolve_cam_layer(model: nn.Module, layer: nn.Module | str | None, x: torch.Tensor | None = None) -> nn.Module:
    """``layer`` resolved to a module; ``None`` picks :func:`probe_cam_layer` on ``x`` when given,
    else :func:`default_cam_layer` from the module list."""
    if layer is not None:
        return resolve_layer(model, layer)
    return probe_cam_layer(model, x)[1] if x is not None else default_cam_layer(model)


def cam_of(activation: torch.Tensor, gradient: torch.Tensor, weighting: Weighting) -> torch.Tensor:
    """``ReLU(sum_k w_k A_k)``: ``(B, 1, *layer_spatial)`` from ``(B, K, *layer_spatial)``."""
    if activation.ndim < 3:
        raise InputError(
            f"the CAM layer's output has shape {tuple(activation.shape)}; it needs channels and "
            "at least one spatial dimension: choose a convolutional layer with layer="
        )
    return F.relu((weighting(activation, gradient) * activation).sum(dim=1, keepdim=True))


def layer_cam(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    layer: nn.Module | str | None,
    weighting: Weighting,
    budget: Budget,
) -> torch.Tensor:
    """A class activation map at ``layer``, ``(B, 1, *layer_spatial)``, chunked by the engine.

    The engine differentiates the target score with respect to the layer's output only, so the
    backward pass stops at the layer. A token layer of a 2D or 3D input, ``(B, N, D)``, is read
    as the feature map ``(B, D, *grid)`` of its patch tokens
    (:func:`medlens.attribution.transformer.tokens.feature_maps`).
    """
    module = resolve_cam_layer(model, layer, x)
    maps: list[torch.Tensor] = []
    with capture(model, module) as record:

        def consume(start, stop, outputs, grads, aux):
            # a transformer's (B, N, D) tokens become (B, D, *patch grid), class tokens dropped
            maps.append(cam_of(*feature_maps(record.activation, grads, x.shape[2:]), weighting))

        engine.run(model, len(x), x, mode="gradient", target=target, consume=consume, budget=budget, layer=module)
    return torch.cat(maps)


COARSE_GRID = 5  # fewer cells than this along an axis and the map cannot say where inside the input


def grid_note(layer_spatial: Sequence[int], spatial: Sequence[int]) -> str | None:
    """A note when the layer's grid is too coarse to localise: fewer than :data:`COARSE_GRID`
    cells along an axis of the input that has more elements than that.

    A CAM is constant over a cell up to interpolation, so it cannot place anything smaller than
    one cell: a 3D ResNet-18's last stage on a 64^3 volume is a 4^3 grid of 16^3-voxel cells.
    """
    if all(g >= COARSE_GRID or g >= n for g, n in zip(layer_spatial, spatial)):
        return None
    grid, size = "x".join(map(str, layer_spatial)), "x".join(map(str, spatial))
    cell = "x".join(str(-(-n // g)) for g, n in zip(layer_spatial, spatial))
    return (f"the CAM layer's grid is {grid} on a {size} input: each cell spans {cell} input elements, so the "
            "map cannot place anything smaller (its detail is interpolation); choose an earlier layer with "
            "layer=, or a gradient or perturbation method, to localise")


def blank_note(cam: torch.Tensor) -> str | None:
    """A note when the map of some inputs is zero everywhere (shown as a blank overlay, it would
    read as "nothing here" rather than "nothing positive at this layer")."""
    blank = int((cam.flatten(1).amax(1) <= 0).sum())
    if not blank:
        return None
    return (f"the map is zero everywhere for {blank} of {len(cam)} input(s): at the CAM layer the target's weighted "
            "channels sum to a negative value at every position, which the CAM's ReLU removes; choose another "
            "layer with layer=, or a gradient or perturbation method")


def _cam(model, x, target, layer, upsample, weighting, budget) -> tuple[torch.Tensor, dict]:
    cam = layer_cam(model, x, target, layer, weighting, budget)
    notes = [n for n in (blank_note(cam), grid_note(cam.shape[2:], x.shape[2:])) if n]
    return (upsample_to(cam, x.shape[2:]) if upsample else cam), ({"note": "; ".join(notes)} if notes else {})


@register(
    "gradcam",
    needs_gradients=True,
    reads_prediction=True,
    layer_resolution=True,
    summary="layer activations weighted by their mean gradient (class activation map)",
    reference="Selvaraju et al. 2017",
)
def gradcam(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    layer: nn.Module | str | None = None,
    upsample: bool = True,
    budget: Budget = Budget(),
) -> tuple[torch.Tensor, dict]:
    """Grad-CAM: ``ReLU(sum_k mean(dS/dA_k) A_k)`` at a layer.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)``.
    layer : nn.Module or str, optional
        The layer whose output ``A`` (``(B, K, *layer_spatial)``) is weighted, or its dotted
        name. Default: the last convolution's rectified output (:func:`default_cam_layer`).
        A transformer's token layer ``(B, N, D)`` (e.g. ``blocks.3.norm1``) works as it is: the
        class tokens and the patch grid are found from ``N`` and the input's shape.
    upsample : bool
        ``True``: (bi/tri)linear upsampling to the input's spatial size, ``(B, 1, *spatial)``;
        ``False``: the layer-resolution map ``(B, 1, *layer_spatial)``.

    Returns
    -------
    values : torch.Tensor
        Non-negative map, ``(B, 1, *spatial)`` or ``(B, 1, *layer_spatial)``. For a network
        ending in global average pooling and a linear layer, the map at the pooled layer is
        ``ReLU(CAM) / n_locations``, the class activation map of Zhou et al. (2016).
    extras : dict
        ``{"note": ...}`` when the layer's grid is too coarse to localise (:func:`grid_note`) or a
        map is zero everywhere (:func:`blank_note`).
    """
    return _cam(model, x, target, layer, upsample, gradcam_weights, budget)


@register(
    "gradcam_pp",
    needs_gradients=True,
    reads_prediction=True,
    layer_resolution=True,
    summary="Grad-CAM with per-location weights of positive gradients",
    reference="Chattopadhay et al. 2018",
)
def gradcam_pp(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    layer: nn.Module | str | None = None,
    upsample: bool = True,
    budget: Budget = Budget(),
) -> tuple[torch.Tensor, dict]:
    """Grad-CAM++: activations weighted by positive gradients with per-location coefficients.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)``.
    layer : nn.Module or str, optional
        The layer whose output ``A`` (``(B, K, *layer_spatial)``) is weighted, or its dotted
        name. Default: the last convolution's rectified output (:func:`default_cam_layer`).
    upsample : bool
        ``True``: (bi/tri)linear upsampling to the input size, ``(B, 1, *spatial)``;
        ``False``: the layer-resolution map ``(B, 1, *layer_spatial)``.

    Returns
    -------
    values : torch.Tensor
        Non-negative map, ``(B, 1, *spatial)`` or ``(B, 1, *layer_spatial)``; see
        :func:`gradcam_pp_weights` for the constant ``exp(S)`` left out.
    extras : dict
        ``{"note": ...}`` when the layer's grid is too coarse to localise (:func:`grid_note`) or a
        map is zero everywhere (:func:`blank_note`).
    """
    return _cam(model, x, target, layer, upsample, gradcam_pp_weights, budget)
