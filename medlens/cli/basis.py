"""``medlens basis``: the training cases a model sees as most alike a case (Lee et al. 2019).

Embeds the training split with the model (penultimate features, or ``--layer``), retrieves the
``k`` nearest training cases of each query (cosine similarity) and writes ``basis.json`` (their
indices, labels, predictions and similarities) and ``report.html`` (each query beside its
neighbours, all with saliency maps). A retrieved case that is the query's own image
(``same_image``) or another image of its patient (``same_patient``: a follow-up scan; the patient is
the labels' ``group`` column or the DICOM PatientID, compared by digest and never shown) is flagged
in basis.json, in a warning line and in the report: the case or the patient is in the training data.
Slices are counted from 1 in figures; ``#3`` is a 0-based row (what ``--index`` takes).
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, add_out_folder, command_parser
    from medlens.cli.inputs import add_reference_flags

    p = command_parser(sub, "basis", help="retrieve the most similar training cases (prediction basis)",
                       doc=__doc__, examples=[
                           "medlens basis --model model.pt --data pneumoniamnist --index 0 --index 7 --k 5 --out basis/",
                           "medlens basis --model model.pt --data pneumoniamnist --input case.dcm --out basis/",
                           "medlens basis --model model.pt --data lesions.npz --method gradcam --batch-size 32 --out basis/",
                           "medlens basis --model model.pt --data scans/ --labels labels.csv --index 3 --out basis/",
                       ])
    p.add_argument("--model", required=True, help="medlens model file or TorchScript file")
    p.add_argument("--data", required=True, help="the training cases: bundled data set name, npz file (its train split), or a folder of scans "
                   "(every case, or the model's training split when it was trained on the folder)")
    p.add_argument("--input", help="query file or folder: npz data set, DICOM, NIfTI, PNG or .npy (default: --data)")
    p.add_argument("--index", type=int, action="append", help="query case index in an npz or a folder of scans (repeatable; default 0)")
    p.add_argument("--split", default="test", help="split of the queries in an npz (default: test)")
    p.add_argument("--k", type=int, default=5, help="training cases per query (default: 5)")
    p.add_argument("--layer", help="embedding layer (default: model.embed)")
    p.add_argument("--method", default="gradient", help="saliency method of the maps (default: gradient)")
    add_out_folder(p, help="output folder")
    add_reference_flags(p)
    add_flags(p, "option", "budget", "quiet", "multi-label")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medlens.app.basis import BasisRequest, prediction_basis_report
    from medlens.cli.common import parse_options
    from medlens.cli.inputs import recipe_options

    result = prediction_basis_report(BasisRequest(
        model=args.model, data=args.data, out=args.out, input=args.input, index=tuple(args.index or ()),
        split=args.split, k=args.k, layer=args.layer, method=args.method, options=parse_options(args.option),
        batch_size=args.batch_size, memory_mb=args.memory_mb, labels=args.labels, recipe=recipe_options(args),
        show_identifiers=args.show_identifiers, multi_label=args.multi_label,
    ))
    for line in result.lines:
        print(line)
    return 0
