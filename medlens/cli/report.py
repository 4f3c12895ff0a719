"""``medlens report``: a case report a clinician can read, for one scan.

Writes OUT/report.html (one self-contained file: no network request, no external script or
font) and OUT/case.json (the prediction, the methods shown and how far each can be trusted).
The page shows the scan at its native resolution with the maps overlaid (opacity slider, method
switch; three planes with slice sliders for a volume; a zoomable strip for a signal), the
prediction with its probability (and what it means, when the model file holds calibration
data), how far to trust the maps (from --evaluation, else checks run on this case), the most
similar training cases with their own maps (--basis-data), the model's own sentence
(InterpNET-style models) and fixed caveats. Patient identifiers are left out unless
--show-identifiers is given (DICOM PS3.15 basic profile); the report names what it withheld.
"""

from __future__ import annotations

import argparse




def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, command_parser
    from medlens.cli.inputs import add_recipe_flags

    p = command_parser(sub, "report", help="case report for one scan (HTML, for clinicians)", doc=__doc__,
                       examples=[
                           "medlens report --model m.pt --input pneumoniamnist --index 3 --out case3",
                           "medlens report --model m.pt --input scan.dcm --evaluation leaderboard/ --out case",
                           "medlens report --model m.pt --input ct_folder/ --methods gradient,gradcam --option gradient.abs=True --out ct",
                           "medlens report --model m.pt --input scan.nii.gz --methods integrated_gradients,smoothgrad --option n_steps=16 --out nii",
                           "medlens report --model m.pt --input pneumoniamnist --basis-data pneumoniamnist --limit 2 --out basis",
                       ])
    p.add_argument("--model", required=True, help="medlens model file or TorchScript file")
    p.add_argument("--input", required=True, help="npz data set (or bundled name), or any file medlens reads (DICOM file/folder, NIfTI, PNG, .npy, ...)")
    p.add_argument("--index", type=int, default=0, help="first case index in an npz data set (default: 0)")
    p.add_argument("--split", default="test", help="split of an npz data set (default: test)")
    p.add_argument("--methods", default=None, help="comma-separated methods (default: gradient,integrated_gradients,gradcam)")
    p.add_argument("--target", type=int, default=None, help="class to explain (default: the predicted class)")
    p.add_argument("--evaluation", default=None, metavar="DIR", help="output folder of 'medlens evaluate' for this model")
    p.add_argument("--basis-data", default=None, metavar="D", help="training data (bundled name or npz) for similar cases")
    p.add_argument("--k", type=int, default=5, help="similar training cases shown (default: 5)")
    p.add_argument("--show-identifiers", action="store_true", help="include patient identifiers (escaped)")
    add_recipe_flags(p)
    p.add_argument("--out", required=True, help="output folder")
    # --limit N: reports for the first N cases of an npz data set from --index, one folder each
    add_flags(p, "limit", "option", "budget", "seed", "quiet")
    p.set_defaults(run=run)


def _case_input(args, case, method_note=None):
    from pathlib import Path

    from medlens.app.case_report import CaseInput
    from medlens.data.formats.deid import is_uid_like, read_identity

    p = Path(args.input)
    identifiers: dict[str, str] = {}
    metadata = dict(case.metadata)
    is_file = p.exists() and not str(args.input).lower().endswith(".npz")
    if is_file and getattr(case.record, "format", "") == "DICOM":  # PS3.15's basic profile, read from the header
        identity = read_identity(p)
        identifiers.update(identity.identifiers)
        metadata = dict(identity.metadata)
    elif is_file:  # other formats: what their reader kept apart (NIfTI descriptions, EDF patient fields, ...)
        identifiers.update({str(k): str(v) for k, v in dict(getattr(case.record, "identifiers", {}) or {}).items()})
    kind = case.source.split(" ", 1)[0] if is_file else "case"
    if is_file and (is_uid_like(p.name) or is_uid_like(p.resolve().name)):
        identifiers["file name"] = p.name
        description = f"{kind} file (name withheld: it is a UID)"
    elif is_file and any(v and len(v) > 2 and v.lower() in p.name.lower() for v in _name_parts(identifiers)):
        identifiers["file name"] = p.name
        description = f"{kind} file (name withheld: it holds an identifier)"
    else:
        description = case.source
    native = None if case.native is None else case.native.numpy()
    shape = tuple(native.shape) if native is not None else tuple(case.x.shape[2:])
    description += f", {' x '.join(str(s) for s in shape)}"
    if metadata.get("Modality"):
        description = f"{metadata['Modality']} " + description
    notes = [f"Input read as: {case.note}."] if case.note else []
    notes += [method_note[0].upper() + method_note[1:] + "."] if method_note else []
    # the maps come back through the recipe's exact inverse, as explain writes attribution.npy
    geometry = case.prepared.geometry if native is not None and case.prepared is not None else None
    return CaseInput(native=native, description=description, label=case.label, spacing=case.spacing,
                     metadata=metadata, identifiers=identifiers, notes=notes, window=_dicom_window(metadata),
                     geometry=geometry)


def _dicom_window(metadata: dict[str, str]) -> tuple[float, float] | None:
    """The file's own grey-level window (first WindowCenter / WindowWidth) as (low, high)."""
    try:
        centre = float(metadata["WindowCenter"].split("\\")[0])
        width = float(metadata["WindowWidth"].split("\\")[0])
    except (KeyError, ValueError):
        return None
    return (centre - width / 2, centre + width / 2) if width > 0 else None


def _name_parts(identifiers: dict[str, str]) -> list[str]:
    parts = []
    for key in ("PatientName", "PatientID", "AccessionNumber", "OtherPatientIDs", "PatientBirthDate"):
        parts.extend(v for v in identifiers.get(key, "").replace("^", " ").split() if v)
    return parts


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from medlens.app.case_report import DEFAULT_METHODS, case_report
    from medlens.attribution.registry import get_method
    from medlens.attribution.explain import check_runnable, runnable_methods
    from medlens.cli.common import options_per_method, staged_output, write_json
    from medlens.cli.inputs import load_case, recipe_from_args
    from medlens.errors import InputError, MedlensError
    from medlens.models import load_model
    from medlens.report.case import write_case_report

    limit = 1 if args.limit is None else args.limit
    if args.k < 1:
        raise MedlensError(f"--k must be at least 1, got {args.k}")
    methods = [m.strip() for m in (args.methods or ",".join(DEFAULT_METHODS)).split(",") if m.strip()]
    for m in methods:
        get_method(m)  # an unknown name fails before any work
    options = options_per_method(args.option, methods)
    if args.evaluation is not None and not Path(args.evaluation).is_dir():
        raise MedlensError(f"evaluation folder {args.evaluation!r} does not exist")
    model, meta = load_model(args.model)
    method_note = None
    if args.methods:
        for m in methods:
            check_runnable(model, m, options.get(m))
    else:
        methods, method_note = runnable_methods(model, methods, options)
        options = {k: v for k, v in options.items() if k in methods}
    basis_inputs = basis_labels = None
    if args.basis_data is not None:
        from medlens.data import load_dataset

        train = load_dataset(args.basis_data, "train")
        expected = meta.get("input_shape")
        if expected is not None and list(train.inputs.shape[1:]) != list(expected):
            raise InputError(f"basis data {args.basis_data!r} have cases of shape {tuple(train.inputs.shape[1:])}, "
                             f"the model takes {tuple(expected)}")
        basis_inputs, basis_labels = train.inputs, train.labels
    indices = list(range(args.index, args.index + limit))
    if len(indices) > 1 and not (str(args.input).lower().endswith(".npz") or not Path(args.input).exists()):
        raise MedlensError("--limit above 1 needs an npz data set (or a bundled name) as --input")
    from medlens.data import BUNDLED

    is_dataset = args.input in BUNDLED or str(args.input).lower().endswith(".npz")
    recipe = None if is_dataset else recipe_from_args(args, meta)  # the model's recipe, as explain applies it
    cases = [load_case(args.input, index=i, split=args.split, input_shape=meta.get("input_shape"), recipe=recipe)
             for i in indices]
    results = []
    for i, case in zip(indices, cases):
        content, summary = case_report(
            model, case.x, args.target, case=_case_input(args, case, method_note), meta=meta, methods=methods,
            method_options=options, evaluation=args.evaluation, basis_inputs=basis_inputs, basis_labels=basis_labels,
            k=args.k, show_identifiers=args.show_identifiers, seed=args.seed, batch_size=args.batch_size,
            memory_mb=args.memory_mb, model_name=Path(args.model).name,
        )
        results.append((i, content, summary))
    with staged_output(args.out) as out:
        for i, content, summary in results:
            folder = out if len(results) == 1 else out / f"case-{i}"
            write_case_report(content, folder / "report.html")
            write_json(folder / "case.json", summary)
    if not args.quiet:
        for i, _content, summary in results:
            where = Path(args.out) / ("report.html" if len(results) == 1 else f"case-{i}/report.html")
            print(f"{summary['predicted_class']} (p={max(summary['probabilities'].values()):.3f}); "
                  f"maps: {', '.join(summary['methods'])}; trust: {summary['trust']['level']} -> {where}")
    return 0
