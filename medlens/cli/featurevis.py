"""``medlens featurevis``: render the inputs that maximise units, layers or classes of a model.

Writes ``featurevis.png`` (one panel per unit, with its index), ``curves.png`` (objective per
step), ``images.npy`` ``(N, C, *spatial)`` and ``summary.json``.
"""

from __future__ import annotations

import argparse

OBJECTIVES = ("neuron", "channel", "layer", "logit", "probability", "direction")


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, command_parser

    p = command_parser(sub, "featurevis", help="feature visualisation by activation maximisation", doc=__doc__,
                       examples=[
                           "medlens featurevis --model m.pt --objective channel --layer features.block1.act --channels 0-15 --out fv/",
                           "medlens featurevis --model m.pt --objective probability --out fv/          # every class",
                           "medlens featurevis --model m.pt --objective layer --layer features.block3.act --per-objective 4 --diversity 0.5 --out fv/",
                       ])
    p.add_argument("--model", required=True, help="medlens model file or TorchScript file")
    p.add_argument("--objective", default="channel", choices=OBJECTIVES, help="what to maximise (default: channel)")
    p.add_argument("--layer", help="dotted layer name (neuron, channel, layer, direction)")
    p.add_argument("--channels", help="channels, e.g. 0-15 or 0,3,7 (neuron, channel; default: all of the layer)")
    p.add_argument("--position", help="neuron position in the layer's activation, e.g. 3,4 (default: centre)")
    p.add_argument("--classes", help="classes, e.g. 0-1 (logit, probability; default: all)")
    p.add_argument("--vector", help=".npy file with one entry per channel of --layer (direction)")
    p.add_argument("--per-objective", type=int, default=1, help="images per objective for layer/direction (default: 1)")
    p.add_argument("--diversity", type=float, default=0.0, help="weight of the diversity term across the batch")
    p.add_argument("--tv", type=float, default=0.0, help="weight of the total-variation penalty")
    p.add_argument("--shape", help="input shape C,*spatial when the model file does not record it, e.g. 1,28,28")
    p.add_argument("--input-range", default="0,1", help="valid input range LOW,HIGH (default: 0,1)")
    p.add_argument("--steps", type=int, default=256)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--param", default="fourier", choices=("fourier", "pixel"))
    p.add_argument("--transforms", default="default", choices=("default", "none"))
    p.add_argument("--out", required=True, help="output folder")
    add_flags(p, "seed", "quiet")
    p.set_defaults(run=run)


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

    x = torch.full((1, *shape), (input_range[0] + input_range[1]) / 2)
    with evaluation_mode(model), torch.inference_mode():
        if layer is None:
            return None, model_outputs(model, x).shape
        with capture(model, layer) as rec:
            out = model_outputs(model, x)
    return rec.activation.shape if rec.activation is not None else None, out.shape


def build_objectives(args: argparse.Namespace, model, shape: tuple[int, ...], input_range):
    """The objectives (one per image) and their captions, from the command-line arguments."""
    import numpy as np
    import torch

    from medlens import featurevis as fv
    from medlens.errors import FileFormatError, InputError

    kind = args.objective
    needs_layer = kind in ("neuron", "channel", "layer", "direction")
    if needs_layer and not args.layer:
        raise InputError(f"--objective {kind} needs --layer")
    if args.diversity and not args.layer:
        raise InputError("--diversity needs --layer (the layer whose styles should differ)")
    if args.per_objective < 1:
        raise InputError(f"--per-objective must be at least 1, got {args.per_objective}")
    probed = args.layer if needs_layer or args.diversity else None
    act_shape, out_shape = _probe_layer(model, probed, shape, input_range)
    if (needs_layer or args.diversity) and act_shape is None:
        raise InputError(f"layer {args.layer!r} is not run by the model's forward pass")
    if kind in ("neuron", "channel"):
        units = parse_indices(args.channels, "--channels") if args.channels else list(range(act_shape[1]))
        position = tuple(int(v) for v in _floats(args.position, "--position")) if args.position else None
        if kind == "neuron":
            objs = [fv.neuron(args.layer, c, position) for c in units]
        else:
            objs = [fv.channel(args.layer, c) for c in units]
        labels = [f"ch {c}" for c in units]
    elif kind in ("logit", "probability"):
        classes = parse_indices(args.classes, "--classes") if args.classes else list(range(out_shape[1]))
        make = fv.logit if kind == "logit" else fv.probability
        objs = [make(k) for k in classes]
        names = getattr(args, "class_names", None) or []
        labels = [names[k] if 0 <= k < len(names) else f"class {k}" for k in classes]
    elif kind == "layer":
        objs = [fv.layer(args.layer)] * args.per_objective
        labels = [f"{args.layer} #{i}" for i in range(args.per_objective)]
    else:
        if not args.vector:
            raise InputError("--objective direction needs --vector FILE.npy")
        try:
            vector = torch.from_numpy(np.load(args.vector, allow_pickle=False)).double()
        except (OSError, ValueError) as err:
            raise FileFormatError(f"{args.vector!r} is not a readable .npy array: {err}") from None
        objs = [fv.direction(args.layer, vector)] * args.per_objective
        labels = [f"direction #{i}" for i in range(args.per_objective)]
    objective = fv.per_image(objs)
    if args.diversity:
        objective = objective + args.diversity * fv.diversity(args.layer)
    if args.tv:
        objective = objective - args.tv * fv.total_variation()
    return objective, objs, labels


def run(args: argparse.Namespace) -> int:
    import time

    import numpy as np

    from medlens import featurevis as fv
    from medlens.core.checks import evaluation_mode, model_outputs
    from medlens.cli.common import staged_output, write_json
    from medlens.core.targets import probabilities
    from medlens.errors import InputError
    from medlens.models import load_model
    from medlens.viz import figure_png
    from medlens.viz.featurevis import feature_grid, objective_curves

    if args.steps < 1:
        raise InputError(f"--steps must be at least 1, got {args.steps}")
    input_range = _floats(args.input_range, "--input-range")
    if len(input_range) != 2:
        raise InputError(f"--input-range must be LOW,HIGH, got {args.input_range!r}")
    model, meta = load_model(args.model)
    args.class_names = meta.get("class_names")
    shape = _input_shape(model, meta, args.shape)
    objective, parts, labels = build_objectives(args, model, shape, input_range)
    batch_shape = (len(parts), *shape)
    start = time.perf_counter()
    images, values = fv.render(model, objective, batch_shape, steps=args.steps, lr=args.lr, param=args.param,
                               transforms=args.transforms, seed=args.seed, input_range=input_range)
    seconds = time.perf_counter() - start
    final = fv.objective_values(model, parts, images, input_range=input_range)
    with evaluation_mode(model):
        probs = probabilities(model_outputs(model, images))
    title = f"{args.objective}" + (f" of {args.layer}" if args.layer else "") + f" ({args.param}, {args.steps} steps)"
    with staged_output(args.out) as out:
        np.save(out / "images.npy", images.cpu().numpy())
        (out / "featurevis.png").write_bytes(figure_png(feature_grid(images, labels, title, input_range=input_range)))
        (out / "curves.png").write_bytes(figure_png(objective_curves(values, labels, title)))
        write_json(out / "summary.json", {
            "model": str(args.model),
            "objective": objective.name,
            "units": [{"label": lab, "objective": o.name, "value": float(v), "probabilities": p.tolist()}
                      for lab, o, v, p in zip(labels, parts, final, probs)],
            "steps": args.steps, "lr": args.lr, "param": args.param, "transforms": args.transforms,
            "seed": args.seed, "input_range": list(input_range),
            "seconds": seconds, "steps_per_second": args.steps / seconds,
        })
    print(f"featurevis: {len(parts)} {args.objective} objective(s), {args.steps} steps in {seconds:.1f} s "
          f"({args.steps / seconds:.1f} steps/s) -> {args.out}")
    return 0
