"""``medlens report``: a case report a clinician can read, for one scan.

Writes OUT/report.html (one self-contained file: no network request, no external script or
font) and OUT/case.json (the prediction, the methods shown and how far each can be trusted).
The page shows the scan at its native resolution with the maps overlaid (opacity slider, method
switch; three planes with slice sliders for a volume; a zoomable strip for a signal), the
prediction with its probability (and what it means, when the model file holds calibration
data), how far to trust the maps (from --evaluation, else checks run on this case), the most
similar training cases with their own maps (--basis-data: a data set, or a folder of scans with
--basis-labels read as ``medlens basis`` reads it, its cases named case-0000..., flagged when of
the query's patient, drawn blank when their header says the pixels identify the patient), the model's own sentence
(InterpNET-style models) and fixed caveats. Patient identifiers are left out unless
--show-identifiers is given (DICOM PS3.15 basic profile); the report names what it withheld.

For a text model the input is a ``.txt`` note or a notes file (``--index`` picks the note): the
page shows the note highlighted by grad x input, integrated gradients and the attention, trust
checks (the validation record at this confidence, truncation, unknown words, whether attention and
gradients agree) and, with ``--basis-data NOTES``, the most similar training notes.
"""

from __future__ import annotations

import argparse




def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, add_out_folder, command_parser
    from medlens.cli.inputs import add_recipe_flags, add_text_flags

    p = command_parser(sub, "report", help="case report for one scan (HTML, for clinicians)", doc=__doc__,
                       examples=[
                           "medlens report --model m.pt --input pneumoniamnist --index 3 --out case3",
                           "medlens report --model m.pt --input scan.dcm --evaluation leaderboard/ --out case",
                           "medlens report --model m.pt --input ct_folder/ --methods gradient,gradcam --option gradient.abs=True --out ct",
                           "medlens report --model m.pt --input scan.nii.gz --methods integrated_gradients,smoothgrad --option n_steps=16 --out nii",
                           "medlens report --model m.pt --input pneumoniamnist --basis-data pneumoniamnist --limit 2 --out basis",
                           "medlens report --model m.pt --input scan.dcm --basis-data scans/ --basis-labels labels.csv --out case",
                           "medlens report --model notes.pt --input note.txt --basis-data train_notes.csv --out note",
                       ])
    p.add_argument("--model", required=True, help="medlens model file or TorchScript file")
    p.add_argument("--input", required=True, help="npz data set (or bundled name), or any file medlens reads (DICOM file/folder, NIfTI, PNG, .npy, ...)")
    p.add_argument("--index", type=int, default=0, help="first case index in an npz data set (default: 0)")
    p.add_argument("--split", default="test", help="split of an npz data set (default: test)")
    p.add_argument("--methods", default=None, help="comma-separated methods (default: gradient,integrated_gradients,gradcam)")
    p.add_argument("--target", "--target-class", dest="target", default=None,
                   help="class to explain, by index or by name (default: the predicted class)")
    p.add_argument("--evaluation", default=None, metavar="DIR", help="output folder of 'medlens evaluate' for this model")
    p.add_argument("--basis-data", default=None, metavar="D",
                   help="training data for similar cases: bundled name, npz, or a folder of scans read as 'medlens basis --data' reads it "
                        "(retrieved cases named case-0000..., files in identifiers.csv only); a notes file for a text model")
    p.add_argument("--basis-labels", default=None, metavar="FILE",
                   help="a folder of scans as --basis-data: CSV with columns case,label (as 'medlens basis --labels'); without it labels are unknown")
    p.add_argument("--k", type=int, default=5, help="similar training cases shown (default: 5)")
    p.add_argument("--show-identifiers", action="store_true", help="include patient identifiers (escaped), and the image when its DICOM header says its "
                        "pixels identify the patient (BurnedInAnnotation YES; default: the maps on a blank background)")
    add_recipe_flags(p)
    add_out_folder(p, help="output folder")
    add_text_flags(p)
    # --limit N: reports for the first N cases of an npz data set from --index, one folder each
    add_flags(p, "limit", "option", "budget", "seed", "quiet", "multi-label")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medlens.app.report_case import ReportRequest, report_case
    from medlens.cli.common import parse_options
    from medlens.cli.inputs import recipe_options

    result = report_case(ReportRequest(
        model=args.model, input=args.input, out=args.out, index=args.index, split=args.split,
        methods=tuple(m.strip() for m in (args.methods or "").split(",") if m.strip()), target=args.target,
        evaluation=args.evaluation, basis_data=args.basis_data, basis_labels=args.basis_labels, k=args.k, show_identifiers=args.show_identifiers,
        recipe=recipe_options(args), options=parse_options(args.option), limit=args.limit,
        batch_size=args.batch_size, memory_mb=args.memory_mb, seed=args.seed, quiet=args.quiet,
        text_column=args.text_column, label_column=args.label_column, multi_label=args.multi_label,
    ))
    for _i, summary, where in result.cases:  # results, printed with --quiet too (it silences progress only)
        for warning in summary.get("warnings") or ():  # as explain prints them: before the finding
            print(f"warning ({warning['code']}): {warning['message']}")
        found = (f"findings {', '.join(summary['predicted_findings']) or 'none'}; highest "
                 if summary.get("multilabel") else "")
        print(f"{found}{summary['predicted_class']} (p={max(summary['probabilities'].values()):.3f}); "
              f"{_explained(summary)}maps: {', '.join(summary['methods'])}; trust: {summary['trust']['level']} -> {where}")
    return 0


def _explained(summary: dict) -> str:
    """``explained NAME (p=...); `` when the case's maps explain another class than the predicted one (--target-class)."""
    names, explained = list(summary.get("probabilities") or {}), summary.get("explained")
    if not isinstance(explained, int) or explained == summary.get("prediction") or not 0 <= explained < len(names):
        return ""
    return f"explained {names[explained]} (p={summary['probabilities'][names[explained]]:.3f}); "
