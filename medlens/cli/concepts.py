"""``medlens concepts``: explain a trained classifier by a few sparse concepts (Qi and Li 2017).

Fits a concept autoencoder on the model's penultimate features of the training split (or of
``--layer``), scores its fidelity on the test split, and writes ``concepts.pt`` (the autoencoder,
a medlens model file), ``concepts.json`` (fidelity, class importance, top-activating images) and
``report.html`` (each concept with its top-activating images and concept saliency maps).
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, add_out_folder, command_parser
    from medlens.cli.inputs import add_reference_flags

    p = command_parser(sub, "concepts", help="explain a model by a few sparse concepts", doc=__doc__, examples=[
        "medlens concepts --model model.pt --data pneumoniamnist --k 5 --out concepts/",
        "medlens concepts --model model.pt --data lesions.npz --layer features.block2.act --limit 400 --out concepts/",
        "medlens concepts --model model.pt --data pneumoniamnist --method integrated_gradients --option n_steps=16 --out c/",
        "medlens concepts --model model.pt --data scans/ --labels labels.csv --k 4 --out concepts/",
    ])
    p.add_argument("--model", required=True, help="medlens model file or TorchScript file")
    p.add_argument("--data", required=True, help="bundled data set name or npz file (train split fitted, test split held out), or a folder of "
                   "scans (the model's own split of it, else a seeded fifth held out)")
    p.add_argument("--k", type=int, default=5, help="number of concepts (default: 5)")
    p.add_argument("--layer", help="layer whose (spatially averaged) output is explained (default: model.embed)")
    p.add_argument("--head", default="auto", choices=("auto", "model", "linear"),
                   help="predict from the concepts through the model's classifier or a linear head")
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--sparsity", type=float, default=0.05, help="weight of the L1 penalty on the concepts")
    p.add_argument("--top", type=int, default=4, help="top-activating images shown per concept")
    p.add_argument("--method", default=None, help="saliency method of the concept maps (default: gradcam or gradient)")
    add_out_folder(p, help="output folder")
    add_reference_flags(p)
    add_flags(p, "limit", "option", "budget", "seed", "quiet", "multi-label")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medlens.app.concepts import ConceptsRequest, concept_report
    from medlens.cli.common import parse_options
    from medlens.cli.inputs import recipe_options

    result = concept_report(ConceptsRequest(
        model=args.model, data=args.data, out=args.out, k=args.k, layer=args.layer, head=args.head,
        epochs=args.epochs, sparsity=args.sparsity, top=args.top, method=args.method,
        options=parse_options(args.option), limit=args.limit, batch_size=args.batch_size,
        memory_mb=args.memory_mb, seed=args.seed, labels=args.labels, recipe=recipe_options(args),
        show_identifiers=args.show_identifiers, multi_label=args.multi_label,
    ))
    fid, held_out = result.concepts.fidelity, result.held_out
    # the held-out numbers first: on a few fitted cases the fitted agreement is 1.000 whatever the concepts
    first = (f"held-out agreement {held_out.agreement:.3f}, KL {held_out.kl:.4f} on {result.n_held_out} cases; "
             if held_out else "no held-out cases; ")
    print(f"{result.k} concepts: {first}on the {result.n_fitted} cases they were fitted on: agreement "
          f"{fid.agreement:.3f}, KL {fid.kl:.4f}, variance explained {fid.reconstruction:.3f} -> {args.out}")
    if result.splits:
        print(f"fitted on {result.splits['fitted_on']}; held out: {result.splits['held_out'] or 'none'}")
    for sentence in result.pixel_warnings:  # as basis says them
        print(f"warning (identifying_pixels): {sentence}")
    return 0
