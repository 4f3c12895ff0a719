"""FastCAM: Mundhenk, Chen and Ferrari, "Efficient Saliency Maps for Explainable AI" (2019,
arXiv:1911.11293).

Forward-only saliency from the statistics of activations, optionally sharpened by a class map:

1. per chosen layer, the SMOE scale of the post-ReLU activations ``a_k`` over the ``K``
   channels at each location (reference code ``SMOEScaleMap``):
   ``m * (log2(m) - mean_k log2(a_k))`` with ``m = mean_k a_k`` (``a`` offset by ``1e-7``);
2. each layer map normalised per sample to ``[0, 1]`` by the CDF of a Gamma distribution
   fitted to it by maximum likelihood (``GammaNorm2D``; the map is first shifted to start at
   ``1e-7``);
3. the layer maps upsampled (bi/tri)linearly to the input size and combined by a weighted
   average;
4. optionally multiplied by the Grad-CAM map of the last convolution, range-normalised to ``[0, 1]``
   (``cam="gradcam"``, the paper's "FastCAM" proper; ``"gradcam_pp"`` also works).

The default layers are the last layer at each spatial scale of the network (the paper takes
the end of each scale of a ResNet).

Differences from the reference code, both deliberate: the Gamma CDF is the exact regularised
incomplete gamma function (the reference truncates its series after 8 terms, which
underestimates the CDF far in the tail), and the shape estimate runs Newton's method from the
same closed-form start to convergence rather than for a fixed number of steps.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from medlens.attribution.cam import cam_of, gradcam_pp_weights, gradcam_weights, is_feature_map, resolve_cam_layer
from medlens.attribution.common import layer_trace
from medlens.core import engine
from medlens.core.engine import Budget
from medlens.core.hooks import capture, layer_name, resolve_layer
from medlens.attribution.registry import register
from medlens.attribution.transformer.attention_maps import attention_internals
from medlens.attribution.transformer.tokens import feature_maps
from medlens.core.resize import upsample_to
from medlens.core.targets import Target
from medlens.errors import InputError, UnknownNameError

EPS = 1e-7
NORMS = ("gamma", "gauss", "range")
CAMS = {"gradcam": gradcam_weights, "gradcam_pp": gradcam_pp_weights}


def smoe_scale(activation: torch.Tensor) -> torch.Tensor:
    """SMOE scale over channels: ``(B, K, *spatial)`` -> ``(B, *spatial)``.

    ``ReLU`` is applied first (the measure is defined on non-negative activations).
    """
    a = F.relu(activation) + EPS
    m = a.mean(dim=1)
    return m * (torch.log2(m) - torch.log2(a).mean(dim=1))


def gamma_fit(values: torch.Tensor, iterations: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximum-likelihood Gamma shape ``k`` and scale ``theta`` of each row of ``(B, N)`` positives.

    Solves ``log(k) - digamma(k) = s`` with ``s = log(mean x) - mean(log x)`` by Newton's method
    from the closed-form start of Choi and Wette (1969); ``k`` is clamped to ``[1e-7, 18]`` as in
    the reference code.
    """
    s = (torch.log(values.mean(dim=1)) - torch.log(values).mean(dim=1)).clamp_min(1e-12)
    k = (3 - s + torch.sqrt((s - 3) ** 2 + 24 * s)) / (12 * s)
    for _ in range(iterations):
        step = (torch.log(k) - torch.digamma(k) - s) / (1 / k - torch.polygamma(1, k))
        k = (k - step).clamp_min(EPS)
        if bool((step.abs() <= 1e-12 * k).all()):
            break
    k = k.clamp(EPS, 18.0)
    return k, values.mean(dim=1) / k


def normalise(maps: torch.Tensor, how: str) -> torch.Tensor:
    """Squash each map of ``(B, *spatial)`` to ``[0, 1]``, per sample.

    ``gamma``: Gamma CDF of the map shifted to start at ``1e-7`` (the paper's choice);
    ``gauss``: normal CDF with the map's mean and standard deviation; ``range``: min-max.
    """
    flat = maps.reshape(maps.shape[0], -1)
    if how == "gamma":
        shifted = flat - flat.min(dim=1, keepdim=True).values + EPS
        k, theta = gamma_fit(shifted)
        out = torch.special.gammainc(k[:, None].expand_as(shifted), shifted / theta[:, None])
    elif how == "gauss":
        mean, std = flat.mean(dim=1, keepdim=True), flat.std(dim=1, keepdim=True)
        out = 0.5 * (1 + torch.erf((flat - mean) / (std.clamp_min(1e-12) * 2**0.5)))
    elif how == "range":
        low = flat.min(dim=1, keepdim=True).values
        span = (flat.max(dim=1, keepdim=True).values - low).clamp_min(1e-12)
        out = (flat - low) / span
    else:
        raise UnknownNameError(f"unknown normalisation {how!r}; choose one of {', '.join(NORMS)}")
    return torch.nan_to_num(out, nan=0.0).reshape(maps.shape)


def scale_layers(trace: list[tuple[nn.Module, torch.Size, int]], ndim: int,
                 internals: set[nn.Module] = frozenset()) -> list[nn.Module]:
    """The last layer at each spatial scale, from a :func:`layer_trace`: FastCAM's default layers.

    Among outputs shaped like a feature map (:func:`~medlens.attribution.cam.is_feature_map`:
    ``(1, K, *spatial')``, the input's rank ``ndim``, more than one location, not inside an
    attention layer, whose modules are ``internals``), the last module of each distinct spatial
    shape is kept, in execution order. Modules called more than once per pass are skipped
    (their output is ambiguous).
    """
    last: dict[tuple[int, ...], nn.Module] = {}
    for module, shape, calls in trace:
        if is_feature_map(module, shape, ndim, internals) and calls == 1:
            last.pop(tuple(shape[2:]), None)  # re-insert: dict order = order of each scale's last layer
            last[tuple(shape[2:])] = module
    if not last:
        raise InputError("the model has no layer with a spatial feature map; pass layers= explicitly")
    return list(last.values())


@register(
    "fastcam",
    needs_gradients=True,
    summary="SMOE scale of activations across scales, times Grad-CAM",
    reference="Mundhenk, Chen and Ferrari 2019",
)
def fastcam(
    model: nn.Module,
    x: torch.Tensor,
    target: Target,
    *,
    layers: Sequence[nn.Module | str] | None = None,
    weights: Sequence[float] | None = None,
    norm: str = "gamma",
    cam: str | None = "gradcam",
    layer: nn.Module | str | None = None,
    budget: Budget = Budget(),
) -> torch.Tensor:
    """FastCAM saliency map.

    Parameters
    ----------
    x : torch.Tensor
        ``(B, C, *spatial)``.
    layers : sequence of nn.Module or str, optional
        Layers whose activations are measured. Default: the last layer of each spatial
        scale (:func:`scale_layers`). Token layers ``(B, N, D)`` of a transformer are read as
        the feature maps of their patch tokens.
    weights : sequence of float, optional
        Weight of each layer in the average (default: equal).
    norm : {"gamma", "gauss", "range"}
        Per-layer normalisation (see :func:`normalise`).
    cam : {"gradcam", "gradcam_pp"} or None
        Class map multiplying the combined map; ``None`` gives the class-agnostic,
        forward-only map.
    layer : nn.Module or str, optional
        The CAM layer. Default: the last layer whose output is a feature map (with ``layers``
        left to their default, read from the same probe pass; else as ``gradcam`` finds it).

    Returns
    -------
    torch.Tensor
        ``(B, 1, *spatial)`` in ``[0, 1]``.
    """
    if norm not in NORMS:
        raise UnknownNameError(f"unknown normalisation {norm!r}; choose one of {', '.join(NORMS)}")
    if cam is not None and cam not in CAMS:
        raise UnknownNameError(f"unknown cam {cam!r}; choose one of {', '.join(CAMS)} or None")
    if isinstance(layers, (str, nn.Module)):
        layers = [layers]
    if layers is None:
        # one probe pass of one sample
        modules = scale_layers(layer_trace(model, x[:1]), x.ndim, attention_internals(model))
    else:
        modules = [resolve_layer(model, name) for name in layers]
    if not modules:
        raise InputError("fastcam needs at least one layer")
    w = torch.ones(len(modules), dtype=x.dtype) if weights is None else torch.as_tensor(weights, dtype=x.dtype)
    if w.shape != (len(modules),) or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise InputError(f"weights must be {len(modules)} non-negative numbers with a positive sum, got {weights!r}")
    w = (w / w.sum()).tolist()
    if cam is None:
        cam_module = None
    elif layer is None and layers is None:  # the last feature map of the probe pass above
        cam_module = modules[-1]
    else:
        cam_module = resolve_cam_layer(model, layer, x[:1])
    maps: list[torch.Tensor] = []
    with ExitStack() as stack:
        records = [stack.enter_context(capture(model, m)) for m in modules]
        cam_record = stack.enter_context(capture(model, cam_module)) if cam_module is not None else None

        def consume(start, stop, outputs, grads, aux):
            combined = 0
            for weight, module, record in zip(w, modules, records):
                act = record.activation
                if act is not None:  # a transformer's tokens as the feature map of its patches
                    act = feature_maps(act, None, x.shape[2:])[0]
                if act is None or act.ndim != x.ndim:
                    shape = None if act is None else tuple(act.shape)
                    raise InputError(
                        f"layer {layer_name(model, module)!r} gives output {shape}; fastcam needs "
                        f"feature maps (batch, channels, *spatial) of the input's rank"
                    )
                smap = normalise(smoe_scale(act), norm)[:, None]  # (n, 1, *layer_spatial)
                combined = combined + weight * upsample_to(smap, x.shape[2:])
            if cam_record is not None:  # grads: of the target score w.r.t. the CAM layer's output
                class_map = upsample_to(cam_of(*feature_maps(cam_record.activation, grads, x.shape[2:]), CAMS[cam]), x.shape[2:])
                combined = combined * normalise(class_map[:, 0], "range")[:, None]
            maps.append(combined)

        mode = "gradient" if cam_module is not None else "forward"
        engine.run(model, len(x), x, mode=mode, target=target, consume=consume, budget=budget, layer=cam_module)
    return torch.cat(maps)
