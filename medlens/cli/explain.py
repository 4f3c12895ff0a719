"""``medlens explain``: explain one case (or every case in a folder) and write maps on the input's own grid.

The input goes through the model's preprocessing recipe (stored in the medlens model file, or
given with ``--recipe`` / ``--window`` / ``--start`` / ``--leads``), and the attribution comes back
through the inverse geometry: ``attribution.npy`` has the shape of the original image, volume or
signal; ``overlay.png`` is drawn on the full-resolution original; a NIfTI input also gives
``attribution.nii.gz`` with the source affine and header; a DICOM input gives
``attribution_pm.dcm`` (a Parametric Map, for CT/MR slices) and ``overlay_sc.dcm`` (a Secondary
Capture) in the source's study; a signal gives ``signal.png`` with its annotations drawn.
``summary.json`` records the recipe that was applied.

For a text model (trained on notes) the input is a notes file or a ``.txt`` note: ``tokens.csv``
(position, token, word, the method's score, the attention weight), ``note.png`` (the words
highlighted), ``note_attention.png``, ``note.html``; methods gradient, grad_x_input,
integrated_gradients, smoothgrad, occlusion (each token replaced by the pad id), lrp, and for a
transformer (``train --arch transformer``) attention_rollout and transformer_attribution. Notes longer than the model's tokenizer allows are truncated (said in
``summary.json``).

With ``--input FOLDER`` every readable file is explained (DICOM files grouped by series), one
output folder per case, and ``summary.csv`` lists each case with its prediction or its error.
A beat model (``train --windows beats``) given a folder of records explains each annotated beat it
knows, in record order, as ``predict`` scores them (named as ``predictions.csv`` names them, by
the beat's time in its record); ``--limit N`` explains the first N beats (default 20: each beat's
``attribution.npy`` holds its whole record), and one record's ``--start SECONDS`` (a beat's time
less the model's ``before``) explains one beat.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, add_out_folder, command_parser
    from medlens.cli.inputs import add_recipe_flags, add_text_flags

    p = command_parser(sub, "explain", help="explain one input or a folder of inputs", doc=__doc__, examples=[
        "medlens explain --model model.pt --input pneumoniamnist --index 3 --method gradcam --out out/",
        "medlens explain --model model.pt --input chest.png --method integrated_gradients --option n_steps=64 --out out/",
        "medlens explain --model ct.pt --input head_ct/ --window brain --window subdural --window bone --method gradcam --out out/",
        "medlens explain --model ecg.pt --input mitdb/100.hea --start 60 --leads MLII --method occlusion --out out/",
        "medlens explain --model unet.ts --input liver.nii.gz --target-class 1 --target-mask tumour.nii.gz --out out/",
        "medlens explain --model model.pt --input scans/ --method gradcam --out out/",
        "medlens explain --model notes.pt --input note.txt --method integrated_gradients --out out/",
        "medlens explain --model unet.pt --input ct.nii.gz --inferer sliding-window --roi 96,96,96 --overlap 0.25 "
        "--target-class 1 --target-mask liver.nii.gz --method occlusion --out out/",
    ])
    p.add_argument("--model", required=True, help="medlens model file or TorchScript file")
    p.add_argument("--input", required=True,
                   help="a file (DICOM, NIfTI, PNG, JPEG, TIFF, WFDB, EDF, .npy), a DICOM series folder, "
                        "a folder of cases, an npz data set or a bundled name; for a text model a notes file "
                        "(.csv/.tsv/.jsonl: every note) or one .txt note")
    p.add_argument("--index", type=int, default=0, help="case index in an npz data set")
    p.add_argument("--split", default="test", help="split of an npz data set (default: test)")
    p.add_argument("--method", default="gradient", help="attribution method (see medlens.methods())")
    p.add_argument("--target", "--target-class", dest="target", default=None,
                   help="class (output channel) to explain, by index or by name (a finding of a multi-label model: "
                        "--target-class Effusion); default: the predicted class")
    p.add_argument("--target-mask", default=None, metavar="FILE",
                   help="segmentation models: explain the sum of --target-class's scores inside this mask "
                        "(NIfTI, PNG or .npy on the input's grid)")
    p.add_argument("--regression", action="store_true", help="explain the sum of the whole output (regression models)")
    p.add_argument("--dicom-out", action="store_true",
                   help="for a DICOM input also write attribution_pm.dcm and overlay_sc.dcm, filed in the source's "
                        "study: they carry the patient's identifiers (name, ID, study UID)")
    p.add_argument("--show-identifiers", action="store_true",
                   help="name cases by their file paths in every output (default: pseudonymous ids, the files "
                        "listed in identifiers.csv only) and draw an image whose DICOM header says its pixels "
                        "identify the patient (BurnedInAnnotation YES; default: the map on a blank background)")
    p.add_argument("--inferer", choices=["sliding-window"], default=None,
                   help="run a patch model through sliding-window inference (MONAI's SlidingWindowInferer) on the "
                        "whole volume at its own size; methods gradient, integrated_gradients, gradcam, occlusion")
    p.add_argument("--roi", default=None, metavar="D,H,W", help="the patch model's window (roi_size), e.g. 96,96,96")
    p.add_argument("--overlap", type=float, default=0.25, help="overlap of neighbouring windows (default 0.25)")
    p.add_argument("--blend", choices=["constant", "gaussian"], default="constant",
                   help="how overlapping windows' outputs are blended (MONAI's mode; default constant)")
    p.add_argument("--sw-batch-size", type=int, default=1, help="windows run at once (default 1)")
    add_recipe_flags(p)
    add_out_folder(p, help="output folder")
    add_text_flags(p)
    add_flags(p, "limit", "option", "budget", "seed", "quiet", "multi-label")
    p.set_defaults(run=run)


def request_from(args: argparse.Namespace) -> object:
    """The :class:`~medlens.app.explain_file.ExplainRequest` the arguments describe."""
    from medlens.app.explain_file import ExplainRequest
    from medlens.app.explain_sliding import inferer_settings
    from medlens.cli.common import parse_options
    from medlens.cli.inputs import recipe_options

    return ExplainRequest(
        model=args.model, input=args.input, out=args.out, method=args.method, index=args.index, split=args.split,
        target=args.target, target_mask=args.target_mask, regression=args.regression, dicom_out=args.dicom_out,
        show_identifiers=args.show_identifiers,
        recipe=recipe_options(args), options=parse_options(args.option), batch_size=args.batch_size,
        memory_mb=args.memory_mb, seed=args.seed, quiet=args.quiet, text_column=args.text_column,
        label_column=args.label_column, limit=args.limit, multi_label=args.multi_label,
        inferer=inferer_settings(args.inferer, args.roi, args.overlap, args.blend, args.sw_batch_size),
    )


def run(args: argparse.Namespace) -> int:
    from medlens.app.explain_file import explain_file

    from medlens.cli import SOME_FAILED, list_failures

    result = explain_file(request_from(args))
    failed = [(c.case, c.error) for c in result.failed]
    list_failures(failed)
    for note in result.notes:
        print(f"note: {note}")
    if result.folder:
        from medlens.app.model_quality import MODEL_CODES

        model_level = {w["code"]: w["message"] for c in result.cases for w in c.warnings if w["code"] in MODEL_CODES}
        from medlens.app.pixel_privacy import CODE as PIXELS

        warned = sum(any(w["code"] not in (*MODEL_CODES, PIXELS) for w in c.warnings) for c in result.cases)
        pixels = sum(any(w["code"] == PIXELS for w in c.warnings) for c in result.cases)
        print(f"{result.method}: {result.explained} of {len(result.cases)} case(s) explained -> {args.out} "
              f"(summary.csv; cases' files: identifiers.csv)")
        for code, message in model_level.items():  # the model's own, once: not a fact of any case
            print(f"warning ({code}): {message}")
        if pixels:
            print(f"warning ({PIXELS}): {pixels} case(s) whose pixels may name the patient (burned-in text; "
                  "summary.csv, column warnings; each case's summary.json)")
        if warned:
            print(f"warning: {warned} case(s) unlike the training data, seen at a fraction of their resolution or "
                  "read on a slice grid that is not the patient's (summary.csv, column warnings; each case's "
                  "summary.json)")
        return SOME_FAILED if failed else 0
    case = result.cases[0]
    for warning in case.warnings:
        print(f"warning ({warning['code']}): {warning['message']}")
    print(f"{result.method} for {case.case}: {case.headline}, {case.seconds:.3f} s -> {args.out}")
    if case.note:
        print(f"note: {case.note}")
    return 0
