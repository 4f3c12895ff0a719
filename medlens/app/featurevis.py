"""The ``featurevis`` use case: render the inputs that maximise units, layers or classes of a model.

:func:`render_features` takes a :class:`FeaturevisRequest` and writes ``featurevis.png``,
``curves.png``, ``images.npy`` and ``summary.json``; with ``data`` (channel objectives), also
``references.png`` and ``reference_maps.npy``: beside each channel's rendered input, the
training cases whose CRP relevance for that channel is largest, with their conditional maps
(:mod:`medlens.app.featurevis_references`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OBJECTIVES = ("neuron", "channel", "layer", "logit", "probability", "direction")
#: A class probability this close to 1 on the starting image barely moves (its gradient is p(1 - p)).
SATURATED = 0.999


@dataclass(frozen=True)
class FeaturevisRequest:
    """The arguments of ``medlens featurevis`` (indices as ``"0-15"`` or ``"0,3,7"``)."""

    model: str
    out: str
    objective: str = "channel"
    layer: str | None = None
    channels: str | None = None
    position: str | None = None
    classes: str | None = None
    vector: str | None = None
    per_objective: int = 1
    diversity: float = 0.0
    tv: float = 0.0
    shape: str | None = None
    input_range: str = "0,1"
    steps: int = 256
    lr: float = 0.05
    param: str = "fourier"
    transforms: str = "default"
    seed: int = 0
    multi_label: bool = False
    data: str | None = None
    references: int = 4
    composite: str = "epsilon-plus"
    limit: int | None = None
    batch_size: int | None = None
    memory_mb: float | None = None
    labels: str | None = None  # --data a folder: its labels CSV, the model's recipe with these flags applied
    recipe: Any = None
    show_identifiers: bool = False


@dataclass
class FeaturevisResult:
    """How many objectives were rendered, in how many steps and seconds, and where."""

    n: int
    objective: str
    steps: int
    seconds: float
    out: str
    warnings: list[str] = field(default_factory=list)


def parse_indices(text: str, what: str) -> list[int]:
    """``"0-3,7"`` -> ``[0, 1, 2, 3, 7]``."""
    from medlens.errors import InputError

    out: list[int] = []
    try:
        for part in text.split(","):
            part = part.strip()
            if "-" in part:
                a, b = part.split("-", 1)
                lo, hi = int(a), int(b)
                if hi < lo:
                    raise ValueError
                out.extend(range(lo, hi + 1))
            elif part:
                out.append(int(part))
    except ValueError:
        raise InputError(f"{what} {text!r} must look like 0-15 or 0,3,7") from None
    if not out:
        raise InputError(f"{what} {text!r} names nothing")
    return out


def _floats(text: str, what: str) -> tuple[float, ...]:
    from medlens.errors import InputError

    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InputError(f"{what} {text!r} must be comma-separated numbers") from None


def _input_shape(model, meta: dict, shape_arg: str | None) -> tuple[int, ...]:
    from medlens.errors import InputError

    if shape_arg:
        shape = tuple(int(v) for v in _floats(shape_arg, "--shape"))
    else:
        shape = meta.get("input_shape") or getattr(model, "input_shape", None)
        if shape is None:
            raise InputError("the model file does not record its input shape; pass --shape C,*spatial (e.g. 1,28,28)")
    shape = tuple(int(v) for v in shape)
    if not 2 <= len(shape) <= 4 or min(shape) < 1:
        raise InputError(f"input shape {shape} must be (channels, *spatial) with 1 to 3 spatial dims")
    return shape


def _probe_layer(model, layer: str, shape: tuple[int, ...], input_range: tuple[float, float]):
    """Output shape of ``layer`` ``(1, C, *spatial)`` and of the model, from one mid-range input."""
    import torch

    from medlens.core.checks import evaluation_mode, model_outputs
    from medlens.core.hooks import capture
    from medlens.featurevis.render import require_layer_hooks

    x = torch.full((1, *shape), (input_range[0] + input_range[1]) / 2)
    with evaluation_mode(model), torch.inference_mode():
        if layer is None:
            return None, model_outputs(model, x).shape
        require_layer_hooks(model, [layer])
        with capture(model, layer) as rec:
            out = model_outputs(model, x)
    return rec.activation.shape if rec.activation is not None else None, out.shape


def build_objectives(request: "FeaturevisRequest", model, shape: tuple[int, ...], input_range, class_names=None):
    """The objectives (one per image), their captions and, for channel and neuron objectives,
    their channels (else ``None``), from the command-line arguments."""
    import numpy as np
    import torch

    import medlens.featurevis as fv
    from medlens.errors import FileFormatError, InputError

    kind = request.objective
    needs_layer = kind in ("neuron", "channel", "layer", "direction")
    if needs_layer and not request.layer:
        raise InputError(f"--objective {kind} needs --layer")
    if request.diversity and not request.layer:
        raise InputError("--diversity needs --layer (the layer whose styles should differ)")
    if request.per_objective < 1:
        raise InputError(f"--per-objective must be at least 1, got {request.per_objective}")
    units = None
    probed = request.layer if needs_layer or request.diversity else None
    act_shape, out_shape = _probe_layer(model, probed, shape, input_range)
    if (needs_layer or request.diversity) and act_shape is None:
        raise InputError(f"layer {request.layer!r} is not run by the model's forward pass")
    if kind in ("neuron", "channel"):
        units = parse_indices(request.channels, "--channels") if request.channels else list(range(act_shape[1]))
        position = tuple(int(v) for v in _floats(request.position, "--position")) if request.position else None
        if kind == "neuron":
            objs = [fv.neuron(request.layer, c, position) for c in units]
        else:
            objs = [fv.channel(request.layer, c) for c in units]
        labels = [f"ch {c}" for c in units]
    elif kind in ("logit", "probability"):
        classes = parse_indices(request.classes, "--classes") if request.classes else list(range(out_shape[1]))
        if kind == "logit":
            objs = [fv.logit(k) for k in classes]
        else:
            objs = [fv.probability(k, multilabel=request.multi_label) for k in classes]
        names = class_names or []
        labels = [names[k] if 0 <= k < len(names) else f"class {k}" for k in classes]
    elif kind == "layer":
        objs = [fv.layer(request.layer)] * request.per_objective
        labels = [f"{request.layer} #{i}" for i in range(request.per_objective)]
    else:
        if not request.vector:
            raise InputError("--objective direction needs --vector FILE.npy")
        try:
            vector = torch.from_numpy(np.load(request.vector, allow_pickle=False)).double()
        except (OSError, ValueError) as err:
            raise FileFormatError(f"{request.vector!r} is not a readable .npy array: {err}") from None
        objs = [fv.direction(request.layer, vector)] * request.per_objective
        labels = [f"direction #{i}" for i in range(request.per_objective)]
    objective = fv.per_image(objs)
    if request.diversity:
        objective = objective + request.diversity * fv.diversity(request.layer)
    if request.tv:
        objective = objective - request.tv * fv.total_variation()
    return objective, objs, labels, units


def render_features(request: "FeaturevisRequest | None" = None, **kwargs) -> FeaturevisResult:
    """Render the inputs that maximise the request's objectives and write featurevis.png,
    curves.png, images.npy and summary.json into ``request.out`` (with ``data``, also
    references.png and reference_maps.npy)."""
    import io
    import math
    import time

    import numpy as np

    import medlens.featurevis as fv
    from medlens.app.featurevis_references import channel_references, check_request, training_cases
    from medlens.core.checks import evaluation_mode, model_outputs
    from medlens.core.files import atomic_write, staged_folder, write_json
    from medlens.app.inputs import load_model_file
    from medlens.core.targets import model_probabilities, multilabel_of
    from medlens.errors import InputError
    from medlens.viz import figure_png
    from medlens.viz.featurevis import feature_grid, objective_curves

    request = request if request is not None else FeaturevisRequest(**kwargs)
    if request.steps < 1:
        raise InputError(f"--steps must be at least 1, got {request.steps}")
    input_range = _floats(request.input_range, "--input-range")
    if len(input_range) != 2 or not all(math.isfinite(v) for v in input_range) or input_range[0] >= input_range[1]:
        # before the layer probe, which would run the model on the range's middle
        raise InputError(f"--input-range must be LOW,HIGH, two finite numbers with LOW < HIGH, got {request.input_range!r}")
    check_request(request)
    model, meta = load_model_file(request.model, request.multi_label)
    multi_label = multilabel_of(model) is not None
    shape = _input_shape(model, meta, request.shape)
    objective, parts, labels, units = build_objectives(request, model, shape, input_range, meta.get("class_names"))
    cases = training_cases(request, meta, model, shape) if request.data is not None else None  # read before the work
    batch_shape = (len(parts), *shape)
    start = time.perf_counter()
    images, values = fv.render(model, objective, batch_shape, steps=request.steps, lr=request.lr, param=request.param,
                               transforms=request.transforms, seed=request.seed, input_range=input_range)
    seconds = time.perf_counter() - start
    final = fv.objective_values(model, parts, images, input_range=input_range)
    with evaluation_mode(model):
        outputs = model_outputs(model, images)
    probs = model_probabilities(outputs, model)
    title = f"{request.objective}" + (f" of {request.layer}" if request.layer else "") + f" ({request.param}, {request.steps} steps)"
    refs = channel_references(request, model, cases.inputs, units) if cases is not None else None
    warnings = saturated_probabilities(request.objective, labels, values[0])
    with staged_folder(request.out) as out:
        buf = io.BytesIO()
        np.save(buf, images.cpu().numpy())
        atomic_write(out / "images.npy", buf.getvalue())
        atomic_write(out / "featurevis.png", figure_png(feature_grid(images, labels, title, input_range=input_range)))
        atomic_write(out / "curves.png", figure_png(objective_curves(values, labels, title)))
        units_out = [{"label": lab, "objective": o.name, "value": float(v), "probabilities": p.tolist()}
                     for lab, o, v, p in zip(labels, parts, final, probs)]
        if refs is not None:
            _write_references(out, request, images, labels, cases, refs, units_out, input_range)
        write_json(out / "summary.json", {
            "model": str(request.model),
            "objective": objective.name,
            "units": units_out,
            "steps": request.steps, "lr": request.lr, "param": request.param, "transforms": request.transforms,
            "seed": request.seed, "input_range": list(input_range), "multi_label": multi_label,
            "seconds": seconds, "steps_per_second": request.steps / seconds, "warnings": warnings,
        })
    return FeaturevisResult(len(parts), request.objective, request.steps, seconds, request.out, warnings)


def saturated_probabilities(objective: str, labels, first_values) -> list[str]:
    """One warning per probability objective already near 1 on the starting image: its gradient
    p(1 - p) vanishes, so the rendered input stays close to that start (Olah et al. 2017 advise
    the logit for this reason)."""
    if objective != "probability":
        return []
    return [f"{label}: probability {float(v):.4f} already on the starting image, so its gradient vanishes and the "
            "picture stays close to that start; --objective logit shows what raises the class further"
            for label, v in zip(labels, first_values) if float(v) >= SATURATED]


def _write_references(out, request: FeaturevisRequest, images, labels, cases, refs, units_out: list,
                      input_range) -> None:
    """``references.png`` (each channel's rendered input beside its reference cases and their
    conditional maps), ``reference_maps.npy`` ``(channels, k, C, *spatial)`` and, in each unit of
    the summary, its reference cases (rows of the train split) with their concept relevance."""
    import io
    from pathlib import Path

    import numpy as np
    import torch

    from medlens.app.featurevis_references import summary_rows
    from medlens.core.files import atomic_write
    from medlens.viz import figure_png
    from medlens.viz.featurevis import reference_rows

    from medlens.core.files import write_csv
    from medlens.data.cases import data_words, is_dataset

    captions = [[f"{cases.words(int(i))}\nR = {float(r):.3g}" for i, r in zip(ref.indices, ref.relevance)]
                for ref in refs]
    shown = Path(request.data).name if is_dataset(request.data) else data_words(request.data)  # a folder's name may name a patient
    title = (f"{request.layer}: rendered input, then the {request.references} training cases of {shown} "
             f"whose decision the channel carries most relevance for ({request.composite} CRP)")
    atomic_write(out / "references.png", figure_png(reference_rows(
        images, labels, [cases.inputs[ref.indices] for ref in refs], [ref.maps for ref in refs], captions, title,
        input_range=input_range)))
    buf = io.BytesIO()
    np.save(buf, torch.stack([ref.maps for ref in refs]).float().cpu().numpy())
    atomic_write(out / "reference_maps.npy", buf.getvalue())
    for unit, rows in zip(units_out, summary_rows(refs, cases.names)):
        unit["reference_cases"] = rows
    if cases.cases is not None:  # a folder: its case ids -> files
        write_csv(out / "identifiers.csv", cases.cases.identifier_rows())
