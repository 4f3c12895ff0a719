"""``medlens basis``: the training cases a model sees as most alike a case (Lee et al. 2019).

Embeds the training split with the model (penultimate features, or ``--layer``), retrieves the
``k`` nearest training cases of each query (cosine similarity) and writes ``basis.json`` (their
indices, labels, predictions and similarities) and ``report.html`` (each query beside its
neighbours, all with saliency maps).
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, command_parser

    p = command_parser(sub, "basis", help="retrieve the most similar training cases (prediction basis)",
                       doc=__doc__, examples=[
                           "medlens basis --model model.pt --data pneumoniamnist --index 0 --index 7 --k 5 --out basis/",
                           "medlens basis --model model.pt --data pneumoniamnist --input case.dcm --out basis/",
                           "medlens basis --model model.pt --data lesions.npz --method gradcam --batch-size 32 --out basis/",
                       ])
    p.add_argument("--model", required=True, help="medlens model file or TorchScript file")
    p.add_argument("--data", required=True, help="bundled data set name or npz file (the training cases)")
    p.add_argument("--input", help="query file: npz data set, DICOM, NIfTI or .npy (default: --data)")
    p.add_argument("--index", type=int, action="append", help="query case index in an npz (repeatable; default 0)")
    p.add_argument("--split", default="test", help="split of the queries in an npz (default: test)")
    p.add_argument("--k", type=int, default=5, help="training cases per query (default: 5)")
    p.add_argument("--layer", help="embedding layer (default: model.embed)")
    p.add_argument("--method", default="gradient", help="saliency method of the maps (default: gradient)")
    p.add_argument("--out", required=True, help="output folder")
    add_flags(p, "option", "budget", "quiet")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from medlens.cli.common import budget_kwargs, method_options, staged_output, write_json
    from medlens.cli.inputs import load_case
    from medlens.attribution.registry import get_method
    from medlens.data import load_dataset
    from medlens.models import load_model
    from medlens.report import Report
    from medlens.selfexplain.basis import prediction_basis
    from medlens.app.selfexplain_sections import add_basis

    get_method(args.method)
    model, meta = load_model(args.model)
    train = load_dataset(args.data, "train")
    dtype = next(iter(model.parameters())).dtype
    indices = args.index or [0]
    cases = [load_case(args.input or args.data, index=i, split=args.split, input_shape=meta.get("input_shape"))
             for i in indices]
    queries = torch.cat([c.x for c in cases]).to(dtype)
    basis = prediction_basis(model, queries, train.inputs.to(dtype), train.labels, k=args.k, layer=args.layer,
                             method=args.method, **budget_kwargs(args), **method_options(args.option)[""])
    class_names = list(meta.get("class_names") or train.class_names)
    names = [f"{c.source}" + (f" #{i}" if args.input is None or str(args.input).endswith(".npz") else "")
             for c, i in zip(cases, indices)]
    with staged_output(args.out) as out:
        report = Report("medlens prediction basis", f"{args.model}: nearest training cases in {args.data}")
        sec = report.section("Prediction basis: similar training cases")
        add_basis(sec, basis, queries, [c.label for c in cases] if all(c.label is not None for c in cases) else None,
                  train.inputs.to(dtype), class_names, query_names=names)
        write_json(out / "basis.json", {
            "model": str(args.model), "data": str(args.data), "layer": args.layer, "k": args.k,
            "queries": [
                {"query": names[q], "label": cases[q].label, "prediction": int(basis.query_predictions[q]),
                 "neighbours": [{"train_index": int(basis.indices[q, j]), "label": int(basis.labels[q, j]),
                                 "prediction": int(basis.predictions[q, j]),
                                 "similarity": float(basis.similarity[q, j])} for j in range(args.k)]}
                for q in range(len(cases))
            ],
        })
        report.write(out / "report.html")
    for q in range(len(cases)):
        print(f"{names[q]}: nearest training cases {basis.indices[q].tolist()} "
              f"(similarity {float(basis.similarity[q, 0]):.3f}..{float(basis.similarity[q, -1]):.3f})")
    return 0
