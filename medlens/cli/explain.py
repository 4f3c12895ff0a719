"""``medlens explain``: explain one case (or every case in a folder) and write maps on the input's own grid.

The input goes through the model's preprocessing recipe (stored in the medlens model file, or
given with ``--recipe`` / ``--window`` / ``--start`` / ``--leads``), and the attribution comes back
through the inverse geometry: ``attribution.npy`` has the shape of the original image, volume or
signal; ``overlay.png`` is drawn on the full-resolution original; a NIfTI input also gives
``attribution.nii.gz`` with the source affine and header; a DICOM input gives
``attribution_pm.dcm`` (a Parametric Map, for CT/MR slices) and ``overlay_sc.dcm`` (a Secondary
Capture) in the source's study; a signal gives ``signal.png`` with its annotations drawn.
``summary.json`` records the recipe that was applied.

With ``--input FOLDER`` every readable file is explained (DICOM files grouped by series), one
output folder per case, and ``summary.csv`` lists each case with its prediction or its error.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, command_parser
    from medlens.cli.inputs import add_recipe_flags

    p = command_parser(sub, "explain", help="explain one input or a folder of inputs", doc=__doc__, examples=[
        "medlens explain --model model.pt --input pneumoniamnist --index 3 --method gradcam --out out/",
        "medlens explain --model model.pt --input chest.png --method integrated_gradients --option n_steps=64 --out out/",
        "medlens explain --model ct.pt --input head_ct/ --window brain --window subdural --window bone --method gradcam --out out/",
        "medlens explain --model ecg.pt --input mitdb/100.hea --start 60 --leads MLII --method occlusion --out out/",
        "medlens explain --model unet.ts --input liver.nii.gz --target-class 1 --target-mask tumour.nii.gz --out out/",
        "medlens explain --model model.pt --input scans/ --method gradcam --out out/",
    ])
    p.add_argument("--model", required=True, help="medlens model file or TorchScript file")
    p.add_argument("--input", required=True,
                   help="a file (DICOM, NIfTI, PNG, JPEG, TIFF, WFDB, EDF, .npy), a DICOM series folder, "
                        "a folder of cases, an npz data set or a bundled name")
    p.add_argument("--index", type=int, default=0, help="case index in an npz data set")
    p.add_argument("--split", default="test", help="split of an npz data set (default: test)")
    p.add_argument("--method", default="gradient", help="attribution method (see medlens.methods())")
    p.add_argument("--target", "--target-class", dest="target", type=int, default=None,
                   help="class (output channel) to explain (default: the predicted class)")
    p.add_argument("--target-mask", default=None, metavar="FILE",
                   help="segmentation models: explain the sum of --target-class's scores inside this mask "
                        "(NIfTI, PNG or .npy on the input's grid)")
    p.add_argument("--regression", action="store_true", help="explain the sum of the whole output (regression models)")
    p.add_argument("--no-dicom", action="store_true", help="do not write DICOM objects for a DICOM input")
    add_recipe_flags(p)
    p.add_argument("--out", required=True, help="output folder")
    add_flags(p, "option", "budget", "seed", "quiet")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medlens.attribution.registry import get_method
    from medlens.attribution.explain import check_runnable
    from medlens.cli.common import method_options
    from medlens.cli.inputs import load_case, recipe_from_args
    from medlens.errors import InputError
    from medlens.models import load_model

    get_method(args.method)  # fail on an unknown name before any work
    model, meta = load_model(args.model)
    check_runnable(model, args.method, method_options(args.option)[""])
    if args.target_mask and args.target is None:
        raise InputError("--target-mask needs --target-class K: the output channel summed inside the mask")
    folder = Path(args.input)
    from medlens.data.formats.folders import is_one_series

    if folder.is_dir() and not is_one_series(folder):
        return _run_folder(args, model, meta, folder)
    from medlens.data import BUNDLED

    if args.input in BUNDLED or args.input.lower().endswith(".npz"):
        case = load_case(args.input, index=args.index, split=args.split)
    else:
        case = load_case(args.input, recipe=recipe_from_args(args, meta), input_shape=meta.get("input_shape"))
    result = _explain_case(args, model, meta, case, Path(args.out))
    if not args.quiet:
        print(f"{args.method} for {case.source}: {result['headline']}, {result['seconds']:.3f} s -> {args.out}")
        if result.get("note"):
            print(f"note: {result['note']}")
    return 0


def _run_folder(args: argparse.Namespace, model: Any, meta: dict, folder: Path) -> int:
    import csv
    import io

    from tqdm import tqdm

    from medlens.cli.common import staged_output
    from medlens.cli.inputs import case_from_record, recipe_from_args
    from medlens.data.formats.folders import scan_cases
    from medlens.errors import MedlensError

    recipe = recipe_from_args(args, meta)
    cases = scan_cases(folder)
    rows: list[dict[str, Any]] = []
    with staged_output(args.out) as out:
        for scan in tqdm(cases, desc="explain", unit="case", disable=args.quiet):
            name = scan.name
            safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
            try:
                case = case_from_record(scan.read(), recipe, str(scan.where))
                result = _explain_case(args, model, meta, case, out / safe, staged=False)
                rows.append({"case": name, "output": safe, "status": "ok", "prediction": result["prediction"],
                             "predicted_class": result["predicted_class"], "probability": f"{result['probability']:.6f}",
                             "seconds": f"{result['seconds']:.3f}", "error": ""})
            except MedlensError as err:
                rows.append({"case": name, "output": "", "status": "error", "prediction": "", "predicted_class": "",
                             "probability": "", "seconds": "", "error": str(err).splitlines()[0]})
        if not any(r["status"] == "ok" for r in rows):
            first = next((r["error"] for r in rows if r["error"]), "")
            raise MedlensError(f"nothing readable in folder {folder} ({len(rows)} file(s); first error: {first})")
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        (out / "summary.csv").write_text(buf.getvalue(), encoding="utf-8")
    if not args.quiet:
        ok = sum(r["status"] == "ok" for r in rows)
        print(f"{args.method}: {ok} of {len(rows)} case(s) explained -> {args.out} (summary.csv)")
    return 0


def _target_model(args: argparse.Namespace, model: Any, case: Any) -> tuple[Any, int | None, str]:
    """The model (wrapped for segmentation/regression targets), the target class, a description."""
    if args.regression:
        from medlens.core.targets import ReducedOutput

        return ReducedOutput(model), 0, "sum of the whole output"
    if args.target_mask:
        from medlens.core.targets import ReducedOutput

        mask = _mask_on_model_grid(args.target_mask, case)
        return ReducedOutput(model, channel=args.target, mask=mask), 0, f"sum of class {args.target} inside {Path(args.target_mask).name}"
    return model, args.target, ""


def _mask_on_model_grid(path: str, case: Any) -> Any:
    """Read a mask on the input's grid and carry it through the case's geometry to the model's."""
    from medlens.data import read
    from medlens.data.formats.common import Volume
    from medlens.data.recipe import mask_on_model_grid
    from medlens.errors import InputError

    mask = read(path)
    if not isinstance(mask, Volume):
        raise InputError(f"--target-mask {path} is a signal, not a mask")
    if case.record is None or case.prepared is None:
        want = tuple(case.x.shape[2:])
        if tuple(mask.spatial_shape) != want:
            raise InputError(f"--target-mask has shape {tuple(mask.spatial_shape)} but the input is {want}")
        return (mask.array > 0).float().reshape(want)
    original = tuple(case.prepared.geometry.original_shape)
    if tuple(mask.spatial_shape) != original:
        raise InputError(f"--target-mask has shape {tuple(mask.spatial_shape)} but the input is {original}")
    return mask_on_model_grid(case.prepared.geometry, mask.array).float()


def _explain_case(args: argparse.Namespace, model: Any, meta: dict, case: Any, out_dir: Path,
                  staged: bool = True) -> dict[str, Any]:
    import contextlib

    import numpy as np
    import torch

    from medlens.attribution.explain import explain
    from medlens.attribution.registry import get_method
    from medlens.cli.common import budget_kwargs, method_options, staged_output, write_json
    from medlens.core.checks import model_outputs
    from medlens.core.resize import upsample_to
    from medlens.core.targets import probabilities
    from medlens.data.recipe import invert
    from medlens.errors import InputError
    from medlens.viz import attribution_figure, figure_png, signal_attribution_figure

    options = method_options(args.option)[""]
    if get_method(args.method).random and "seed" not in options:
        options["seed"] = args.seed
    explained, target, target_note = _target_model(args, model, case)
    try:
        with torch.inference_mode():
            raw = model_outputs(explained, case.x)
    except RuntimeError as err:
        raise InputError(
            f"the model rejects an input of shape {tuple(case.x.shape)} (does the recipe fit the model?): "
            f"{str(err).splitlines()[0]}"
        ) from err
    if raw.ndim != 2:
        raise InputError(
            f"the model output has shape {tuple(raw.shape)}: explain a segmentation model with "
            "--target-class K --target-mask FILE, or a regression model with --regression"
        )
    probs = probabilities(raw)[0] if not target_note else raw[0]
    if target is None:
        target = int(probs.argmax())  # spares a second pass
    attribution = explain(explained, case.x, target, args.method, **budget_kwargs(args), **options)
    class_names = meta.get("class_names") or [str(k) for k in range(len(probs))]
    target = int(attribution.target[0])
    values = attribution.values[0]
    if values.shape[1:] != case.x.shape[2:]:
        values = upsample_to(attribution.values, case.x.shape[2:])[0]
    title = f"{args.method}: {target_note or 'target ' + (class_names[target] if 0 <= target < len(class_names) else str(target))}"
    written: list[str] = []
    output_notes: list[str] = []
    scope = staged_output(out_dir) if staged else contextlib.nullcontext(out_dir)
    with scope as out:
        out.mkdir(parents=True, exist_ok=True)
        record, prepared = case.record, case.prepared
        if prepared is None:  # a data-set case: already on the model's grid
            np.save(out / "attribution.npy", values.cpu().numpy())
            (out / "overlay.png").write_bytes(figure_png(attribution_figure(case.x[0], values, title)))
            written += ["attribution.npy", "overlay.png"]
        else:
            back = invert(prepared.geometry, values)
            np.save(out / "attribution.npy", back.numpy())
            written.append("attribution.npy")
            if prepared.geometry.kind == "signal":
                fig = signal_attribution_figure(
                    record.values, back, record.fs, record.channels,
                    [(a.sample, a.symbol) for a in record.annotations], units=record.units,
                    span=prepared.geometry.span, seen=prepared.geometry.channel_index, title=title)
                (out / "signal.png").write_bytes(figure_png(fig, dpi=110))
                written.append("signal.png")
            else:
                files, output_notes = _image_outputs(out, record, back, case, values, title, args.no_dicom)
                written += files
        write_json(out / "summary.json", {
            "input": case.source,
            "input_note": case.note,
            "label": case.label,
            "prediction": int(probs.argmax()),
            "predicted_class": class_names[int(probs.argmax())] if int(probs.argmax()) < len(class_names) else None,
            ("outputs" if target_note else "probabilities"):
                {class_names[k] if k < len(class_names) else str(k): float(p) for k, p in enumerate(probs)},
            "method": args.method,
            "target": target,
            "target_note": target_note or None,
            "preprocessing": case.recipe_summary or None,
            "attribution_shape": list(np.load(out / "attribution.npy").shape),
            "files": sorted(written + ["summary.json"]),
            "output_notes": output_notes,
            "params": attribution.params,
            "seconds": attribution.seconds,
            "extras": attribution.extras,
        })
    k = int(probs.argmax())
    return {"prediction": k, "predicted_class": class_names[k] if k < len(class_names) else str(k),
            "probability": float(probs.max()), "seconds": attribution.seconds,
            "headline": f"predicted {k} (p={float(probs.max()):.3f})" if not target_note else target_note,
            "note": attribution.extras.get("note")}


def _image_outputs(out: Path, record: Any, back: Any, case: Any, values: Any, title: str, no_dicom: bool
                   ) -> tuple[list[str], list[str]]:
    """Overlay on the full-resolution original; NIfTI and DICOM objects on the source grid.

    Returns the files written and notes on the DICOM objects that could not be built from this
    source (an odd header loses those objects, never the map and its overlay)."""
    from medlens.viz import attribution_figure, figure_png, image_png, overlay_image

    written: list[str] = []
    notes: list[str] = []
    spatial = record.spatial_shape
    # the picture under the map: grey or RGB as read; the first volume of a multi-channel stack
    shown = record.array if record.channels == 1 or (len(spatial) == 2 and record.channels == 3) else record.array[0]
    if len(spatial) == 2:
        (out / "overlay.png").write_bytes(image_png(overlay_image(shown, back)))
    else:  # a volume: slices of the original with the map, at the original's resolution
        (out / "overlay.png").write_bytes(figure_png(attribution_figure(shown[None], back[None], title), dpi=150))
    written.append("overlay.png")
    if record.format in ("NIfTI", "DICOM") and record.affine is not None:
        from medlens.data.formats.nifti import write_nifti

        write_nifti(back.numpy(), record, out / "attribution.nii.gz")
        written.append("attribution.nii.gz")
    if record.format == "DICOM" and not no_dicom:
        from medlens.data.formats.dicom_out import write_parametric_map, write_secondary_capture
        from medlens.errors import MedlensError

        if record.affine is not None:
            try:
                write_parametric_map(back.numpy(), record, out / "attribution_pm.dcm")
                written.append("attribution_pm.dcm")
            except MedlensError:
                pass  # projection images and odd series: the Secondary Capture below still shows the map
        grey = record.array if len(spatial) == 2 else record.array[spatial[0] // 2]
        heat = back if len(spatial) == 2 else back[spatial[0] // 2]
        try:
            write_secondary_capture(overlay_image(grey, heat), record, out / "overlay_sc.dcm")
            written.append("overlay_sc.dcm")
        except MedlensError as err:
            notes.append(f"no DICOM Secondary Capture: {str(err).splitlines()[0]}")
    return written, notes
