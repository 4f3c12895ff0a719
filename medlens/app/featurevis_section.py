"""The feature-visualisation section of the demo report."""

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
    import medlens.featurevis as fv
    from medlens.core.checks import evaluation_mode, model_outputs
    from medlens.core.hooks import capture
    from medlens.core.targets import probabilities
    from medlens.viz import figure_png
    from medlens.viz.featurevis import feature_grid

    model = ctx.model
    sec = report.section("Feature visualisation: what the network looks for")
    layers = block_layers(model)
    if not layers:
        sec.add_text("The model has no convolution blocks to visualise.")
        return
    shape = tuple(ctx.test_inputs.shape[1:])
    first, last = layers[0], layers[-1]
    steps = QUICK_STEPS if ctx.quick else DEMO_STEPS
    n_show = 4 if ctx.quick else 16

    with evaluation_mode(model), capture(model, first) as a, capture(model, last) as b:
        logits = model_outputs(model, ctx.test_inputs[:1])
    n_first, n_last, n_classes = a.activation.shape[1], b.activation.shape[1], logits.shape[1]
    first_units = list(range(min(n_show, n_first)))
    last_units = class_relevant_channels(model, n_last, n_show)
    names = ctx.class_names + [f"class {k}" for k in range(len(ctx.class_names), n_classes)]

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
        images, _ = fv.render(model, objectives, (len(objectives), *shape), steps=steps, seed=ctx.seed)
    seconds = time.perf_counter() - start
    ctx.timings["featurevis"] = seconds
    final = fv.objective_values(model, objectives, images)
    grey = torch.full((1, *shape), 0.5, dtype=images.dtype)  # no anatomy at all: the optimisation's start
    with evaluation_mode(model):
        probs = probabilities(model_outputs(model, images))
        grey_probs = probabilities(model_outputs(model, grey))[0]

    sec.add_text(
        "Activation maximisation (Erhan et al. 2009; Olah et al., Distill 2017): each picture is the "
        "input the network itself would draw to excite one unit as much as possible, found by gradient "
        "ascent from grey noise with a Fourier (1/f) parameterisation and small random shifts, scalings "
        "and rotations at every step so that only robust patterns survive. They show what a channel "
        "responds to, not where it looked in a given scan; treat them as hypotheses to check against "
        "real cases (the attribution sections), not as anatomy."
    )
    sec.add_text(
        f"{len(objectives)} objectives optimised together in one batch of {len(objectives)} inputs, "
        f"{steps} steps, {seconds:.1f} s ({steps / seconds:.1f} steps/s)."
    )
    i0, i1, i2 = len(first_units), len(first_units) + len(last_units), len(first_units) + len(last_units) + n_classes

    def caption(j: int, c: int) -> str:
        if float(final[j]) > 1e-6:
            return f"ch {c}"
        return f"ch {c} (dead)" if float(data[j]) <= 1e-6 else f"ch {c} (not reached)"

    # yardstick: the highest activation of each channel over real test cases
    reference = ctx.test_inputs[: 64 if ctx.quick else 512]
    data = fv.objective_values_over(model, objectives[:i1], reference).max(0).values  # (channels,)
    alive = [j for j in range(i1) if float(data[j]) > 1e-6]
    beaten = sum(float(final[j]) > float(data[j]) for j in alive)
    sec.add_text(
        f"Yardstick: in {beaten} of the {len(alive)} channels that are active on real scans, the rendered "
        f"input excites the channel more than any of {len(reference)} test images does."
    )
    sec.add_heading(f"First block ({first}): channels {first_units[0]}-{first_units[-1]}")
    sec.add_text("Early channels detect intensity levels, edges and fine textures at the scale of a few pixels.")
    labels = [caption(i, c) for i, c in enumerate(first_units)]
    sec.add_image(figure_png(feature_grid(images[:i0], labels, f"{first}: channel objective")),
                  "Dead channels (inactive on every test image too) stay grey.")
    sec.add_heading(f"Last block ({last}): the {len(last_units)} channels that move the decision most")
    labels = [
        caption(i0 + j, c) + (f"\n-> {names[k]}" if k >= 0 else "")
        for j, (c, k) in enumerate(last_units)
    ]
    sec.add_image(
        figure_png(feature_grid(images[i0:i1], labels, f"{last}: channel objective")),
        "Chosen by the spread of their classifier weights across classes; the arrow names the class "
        "whose score each channel raises.",
    )
    sec.add_table(
        ["channel", "raises", "rendered input", "best of the test images"],
        [[c, names[k] if k >= 0 else "", float(final[i0 + j]), float(data[i0 + j])]
         for j, (c, k) in enumerate(last_units)],
    )
    sec.add_heading("What maximises each class")
    class_labels = [f"p({names[k]})\n= {float(probs[i1 + k, k]):.3f}" for k in range(n_classes)]
    class_labels += [f"logit({names[k]})\n= {float(final[i2 + k]):.1f}" for k in range(n_classes)]
    sec.add_image(
        figure_png(feature_grid(images[i1:], class_labels, "class probability, then class logit")),
        "Probability objectives saturate once the model is certain, so their inputs may stay close to "
        "grey: a model that is certain about a nearly blank image is a warning sign. Logit objectives "
        "keep pushing and show the class evidence the model responds to.",
    )
    sec.add_table(
        ["class", "probability reached (probability objective)", "logit reached (logit objective)", "its probability"],
        [[names[k], float(probs[i1 + k, k]), float(final[i2 + k]), float(probs[i2 + k, k])] for k in range(n_classes)],
    )
    top = int(grey_probs.argmax())
    sec.add_text(
        f"For reference, a uniform mid-grey image, with no anatomy at all, is classified {names[top]} with "
        f"p = {float(grey_probs[top]):.3f}."
        + (" The model is confident on an input that carries no evidence: check what it relies on."
           if float(grey_probs[top]) >= 0.9 else "")
    )
