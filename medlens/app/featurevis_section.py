"""The feature-visualisation section of the demo report: what it computes (the rendered inputs and
their yardsticks); :mod:`medlens.report.featurevis` draws it."""

from __future__ import annotations

import time

import torch
from torch import nn

from medlens.core.threads import torch_threads

DEMO_STEPS = 192
QUICK_STEPS = 8


def block_layers(model: nn.Module) -> list[str]:
    """Names of the block outputs to visualise: the ReLU of every block of the reference CNN,
    else the convolution layers."""
    from medlens.core.hooks import conv_layers

    acts = [name for name, m in model.named_modules() if name.endswith(".act") and isinstance(m, nn.ReLU)]
    return acts or [name for name, _ in conv_layers(model)]


def class_relevant_channels(model: nn.Module, n_channels: int, count: int) -> list[tuple[int, int]]:
    """``(channel, favoured class)`` of the last block's channels that move the class scores most.

    For a CNN ending in global average pooling and one linear layer, channel ``c`` adds
    ``w[k, c] * mean activation`` to the logit of class ``k``; the spread of ``w[:, c]`` across
    classes is how much the channel shifts the decision. Other models: the first channels.
    """
    head = getattr(model, "classifier", None)
    if isinstance(head, nn.Linear) and head.in_features == n_channels:
        w = head.weight.detach()  # (K, C)
        spread = w.max(0).values - w.min(0).values
        order = spread.argsort(descending=True)[:count].tolist()
        return [(c, int(w[:, c].argmax())) for c in order]
    return [(c, -1) for c in range(min(count, n_channels))]


def featurevis_section(ctx, report) -> None:
    """First- and last-block channels and the inputs that maximise each class, in one batched run."""
    from medlens.report.featurevis import featurevis_body

    sec = report.section("Feature visualisation: what the network looks for")
    result = feature_pictures(ctx.model, ctx.test_inputs, ctx.class_names, quick=ctx.quick, seed=ctx.seed)
    if result is None:
        sec.add_text("The model has no convolution blocks to visualise.")
        return
    ctx.timings["featurevis"] = result["seconds"]
    featurevis_body(sec, result)


def feature_pictures(model: nn.Module, test_inputs: torch.Tensor, class_names: list[str], *, quick: bool,
                     seed: int) -> dict | None:
    """Render, in one batched run, the inputs that maximise first- and last-block channels and each
    class (probability and logit), with the yardsticks the report compares them with.

    Returns
    -------
    dict or None
        ``None`` for a model without convolution blocks; else ``first``/``last`` (layer names),
        ``first_units``, ``last_units`` (``(channel, favoured class)``), ``names`` (class names),
        ``n_classes``, ``steps``, ``seconds``, ``images`` (one per objective: first channels,
        last channels, class probabilities, class logits), ``final`` (objective values reached),
        ``data`` (each channel's highest activation over ``n_reference`` test images),
        ``probs`` (class probabilities of each image), ``grey_probs`` (of a mid-grey image) and
        ``references``: per last-block channel, the reference test images whose decision the
        channel carries the most CRP relevance for (``cases``, ``maps``, ``indices``, ``relevance``).
    """
    import medlens.featurevis as fv
    from medlens.core.checks import (  # the engine's forward pass, checked
        evaluation_mode,
        model_outputs,
    )
    from medlens.core.hooks import capture
    from medlens.core.targets import probabilities

    layers = block_layers(model)
    if not layers:
        return None
    shape = tuple(test_inputs.shape[1:])
    first, last = layers[0], layers[-1]
    steps = QUICK_STEPS if quick else DEMO_STEPS
    n_show = 4 if quick else 16

    with evaluation_mode(model), capture(model, first) as a, capture(model, last) as b:
        logits = model_outputs(model, test_inputs[:1])
    n_first, n_last, n_classes = a.activation.shape[1], b.activation.shape[1], logits.shape[1]
    first_units = list(range(min(n_show, n_first)))
    last_units = class_relevant_channels(model, n_last, n_show)
    names = list(class_names) + [f"class {k}" for k in range(len(class_names), n_classes)]

    # one batched run: each image has its own objective
    objectives = (
        [fv.channel(first, c) for c in first_units]
        + [fv.channel(last, c) for c, _ in last_units]
        + [fv.probability(k) for k in range(n_classes)]
        + [fv.logit(k) for k in range(n_classes)]
    )
    start = time.perf_counter()
    # Thousands of small steps on 28x28 images: torch's intra-op threads barely help, and on a
    # busy machine their synchronisation made this loop 3-5x slower (measured on 2 shared cores).
    with torch_threads(1):
        images, _ = fv.render(model, objectives, (len(objectives), *shape), steps=steps, seed=seed)
    seconds = time.perf_counter() - start
    final = fv.objective_values(model, objectives, images)
    grey = torch.full((1, *shape), 0.5, dtype=images.dtype)  # no anatomy at all: the optimisation's start
    with evaluation_mode(model):
        probs = probabilities(model_outputs(model, images))
        grey_probs = probabilities(model_outputs(model, grey))[0]
    # yardstick: the highest activation of each channel over real test cases
    reference = test_inputs[: 64 if quick else 512]
    i1 = len(first_units) + len(last_units)
    data = fv.objective_values_over(model, objectives[:i1], reference).max(0).values  # (channels,)
    references = relevance_references(model, reference, last, [c for c, _ in last_units], 2 if quick else 3)
    return {
        "first": first, "last": last, "first_units": first_units, "last_units": last_units, "names": names,
        "n_classes": n_classes, "n_objectives": len(objectives), "steps": steps, "seconds": seconds,
        "images": images, "final": final, "data": data, "n_reference": len(reference), "probs": probs,
        "grey_probs": grey_probs, "references": references,
    }


def relevance_references(model: nn.Module, cases: torch.Tensor, layer: str, channels: list[int], k: int) -> dict:
    """Relevance maximisation beside activation maximisation: per channel of ``layer``, the ``k``
    cases whose decision (their predicted class) the channel carries the most LRP relevance
    for, with their conditional maps (:func:`medlens.attribution.lrp.reference_cases_of`)."""
    from medlens.attribution.lrp import reference_cases_of

    refs = reference_cases_of(model, cases, layer, channels, k)
    return {"cases": [cases[r.indices] for r in refs], "maps": [r.maps for r in refs],
            "indices": [r.indices.tolist() for r in refs], "relevance": [r.relevance.tolist() for r in refs]}
