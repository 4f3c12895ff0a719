"""``medlens explain``: explain one case and write the attribution, an overlay and a summary."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, command_parser

    p = command_parser(sub, "explain", help="explain one input", doc=__doc__, examples=[
        "medlens explain --model model.pt --input pneumoniamnist --index 3 --method gradcam --out out/",
        "medlens explain --model model.pt --input scan.dcm --method integrated_gradients --option n_steps=64 --out out/",
        "medlens explain --model model.pt --input volume.nii.gz --method occlusion --batch-size 8 --out out/",
    ])
    p.add_argument("--model", required=True, help="medlens model file or TorchScript file")
    p.add_argument("--input", required=True, help="npz data set (or bundled name), DICOM file/folder, NIfTI or .npy")
    p.add_argument("--index", type=int, default=0, help="case index in an npz data set")
    p.add_argument("--split", default="test", help="split of an npz data set (default: test)")
    p.add_argument("--method", default="gradient", help="attribution method (see medlens.methods())")
    p.add_argument("--target", type=int, default=None, help="class to explain (default: the predicted class)")
    p.add_argument("--out", required=True, help="output folder")
    add_flags(p, "option", "budget", "seed", "quiet")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from medlens.attribution.explain import explain
    from medlens.core.checks import model_outputs
    from medlens.cli.common import budget_kwargs, method_options, staged_output, write_json
    from medlens.cli.inputs import load_case
    from medlens.attribution.registry import get_method
    from medlens.core.resize import upsample_to
    from medlens.core.targets import probabilities
    from medlens.models import load_model
    from medlens.viz import attribution_figure, figure_png

    get_method(args.method)  # fail on an unknown name before any work
    options = method_options(args.option)[""]
    if get_method(args.method).random and "seed" not in options:
        options["seed"] = args.seed
    model, meta = load_model(args.model)
    case = load_case(args.input, index=args.index, split=args.split, input_shape=meta.get("input_shape"))
    with torch.inference_mode():
        probs = probabilities(model_outputs(model, case.x))[0]
    target = args.target if args.target is not None else int(probs.argmax())  # spares a second pass
    attribution = explain(model, case.x, target, args.method, **budget_kwargs(args), **options)
    class_names = meta.get("class_names") or [str(k) for k in range(len(probs))]
    target = int(attribution.target[0])
    with staged_output(args.out) as out:
        np.save(out / "attribution.npy", attribution.values[0].cpu().numpy())
        values = attribution.values[0]
        if values.shape[1:] != case.x.shape[2:]:
            values = upsample_to(attribution.values, case.x.shape[2:])[0]
        title = f"{args.method}: target {class_names[target] if 0 <= target < len(class_names) else target}"
        (out / "overlay.png").write_bytes(figure_png(attribution_figure(case.x[0], values, title)))
        write_json(out / "summary.json", {
            "input": case.source,
            "input_note": case.note,
            "label": case.label,
            "prediction": int(probs.argmax()),
            "predicted_class": class_names[int(probs.argmax())] if int(probs.argmax()) < len(class_names) else None,
            "probabilities": {class_names[k] if k < len(class_names) else str(k): float(p) for k, p in enumerate(probs)},
            "method": args.method,
            "target": target,
            "params": attribution.params,
            "seconds": attribution.seconds,
            "extras": attribution.extras,
        })
    print(f"{args.method} for {case.source}: predicted {int(probs.argmax())} (p={float(probs.max()):.3f}), "
          f"{attribution.seconds:.3f} s -> {args.out}")
    return 0
