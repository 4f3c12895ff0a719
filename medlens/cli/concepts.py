"""``medlens concepts``: explain a trained classifier by a few sparse concepts (Qi and Li 2017).

Fits a concept autoencoder on the model's penultimate features of the training split (or of
``--layer``), scores its fidelity on the test split, and writes ``concepts.pt`` (the autoencoder,
a medlens model file), ``concepts.json`` (fidelity, class importance, top-activating images) and
``report.html`` (each concept with its top-activating images and concept saliency maps).
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, command_parser

    p = command_parser(sub, "concepts", help="explain a model by a few sparse concepts", doc=__doc__, examples=[
        "medlens concepts --model model.pt --data pneumoniamnist --k 5 --out concepts/",
        "medlens concepts --model model.pt --data lesions.npz --layer features.block2.act --limit 400 --out concepts/",
        "medlens concepts --model model.pt --data pneumoniamnist --method integrated_gradients --option n_steps=16 --out c/",
    ])
    p.add_argument("--model", required=True, help="medlens model file or TorchScript file")
    p.add_argument("--data", required=True, help="bundled data set name or npz file (its train split is used)")
    p.add_argument("--k", type=int, default=5, help="number of concepts (default: 5)")
    p.add_argument("--layer", help="layer whose (spatially averaged) output is explained (default: model.embed)")
    p.add_argument("--head", default="auto", choices=("auto", "model", "linear"),
                   help="predict from the concepts through the model's classifier or a linear head")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--sparsity", type=float, default=0.05, help="weight of the L1 penalty on the concepts")
    p.add_argument("--top", type=int, default=4, help="top-activating images shown per concept")
    p.add_argument("--method", default=None, help="saliency method of the concept maps (default: gradcam or gradient)")
    p.add_argument("--out", required=True, help="output folder")
    add_flags(p, "limit", "option", "budget", "seed", "quiet")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medlens.cli.common import budget_kwargs, method_options, staged_output, write_json
    from medlens.attribution.registry import get_method
    from medlens.data import load_dataset
    from medlens.errors import MedlensError
    from medlens.models import load_model, save_model
    from medlens.report import Report
    from medlens.selfexplain.concepts import evaluate_concepts, learn_concepts
    from medlens.app.selfexplain_sections import add_concepts

    if args.k < 1 or args.epochs < 1 or args.top < 1:
        raise MedlensError("--k, --epochs and --top must be positive")
    if args.method:
        get_method(args.method)
    model, meta = load_model(args.model)
    train = load_dataset(args.data, "train")
    inputs, labels = train.inputs, train.labels
    if args.limit:
        inputs, labels = inputs[: args.limit], labels[: args.limit]
    dtype = next(iter(model.parameters())).dtype
    inputs = inputs.to(dtype)
    concepts = learn_concepts(model, inputs, k=args.k, layer=args.layer, head=args.head, epochs=args.epochs,
                              sparsity=args.sparsity, seed=args.seed, **budget_kwargs(args))
    try:
        test = load_dataset(args.data, "test")
        held_out = evaluate_concepts(model, concepts, test.inputs.to(dtype))
    except MedlensError:
        held_out = None  # no test split
    class_names = list(meta.get("class_names") or train.class_names)
    with staged_output(args.out) as out:
        report = Report("medlens concepts", f"{args.model} on {args.data}: {args.k} concepts")
        sec = report.section("Concepts (explanation space)")
        summary = add_concepts(sec, model, concepts, inputs, labels, class_names, held_out=held_out, n_top=args.top,
                               method=args.method, method_options=method_options(args.option)[""])
        save_model(concepts.autoencoder, out / "concepts.pt",
                   {"model": str(args.model), "data": str(args.data), "layer": args.layer, "k": args.k,
                    "head": "model" if concepts.classifier is not None else "linear", **summary})
        write_json(out / "concepts.json", {"model": str(args.model), "data": str(args.data), "layer": args.layer,
                                           "k": args.k, "history": concepts.history[-1:], **summary})
        report.write(out / "report.html")
    fid = concepts.fidelity
    extra = f"; held-out agreement {held_out.agreement:.3f}, KL {held_out.kl:.4f}" if held_out else ""
    print(f"{args.k} concepts: agreement {fid.agreement:.3f}, KL {fid.kl:.4f}, variance explained "
          f"{fid.reconstruction:.3f}{extra} -> {args.out}")
    return 0
