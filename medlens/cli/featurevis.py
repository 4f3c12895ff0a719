"""``medlens featurevis``: render the inputs that maximise units, layers or classes of a model.

Writes ``featurevis.png`` (one panel per unit, with its index), ``curves.png`` (objective per
step), ``images.npy`` ``(N, C, *spatial)`` and ``summary.json``. With ``--data`` (channel and
neuron objectives), also ``references.png``: beside each channel's rendered input, the training
cases whose decision that channel carries the most LRP relevance for (relevance maximisation,
concept relevance propagation), each with its conditional relevance map; the maps in
``reference_maps.npy`` ``(channels, k, C, *spatial)`` and the cases in ``summary.json``.
"""

from __future__ import annotations

import argparse
import sys

from medlens.app.featurevis import OBJECTIVES, FeaturevisRequest, parse_indices

__all__ = ["OBJECTIVES", "add_parser", "parse_indices", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, add_out_folder, command_parser
    from medlens.cli.inputs import add_reference_flags

    p = command_parser(sub, "featurevis", help="feature visualisation by activation maximisation", doc=__doc__,
                       examples=[
                           "medlens featurevis --model m.pt --objective channel --layer features.block1.act --channels 0-15 --out fv/",
                           "medlens featurevis --model m.pt --objective probability --out fv/          # every class",
                           "medlens featurevis --model m.pt --objective layer --layer features.block3.act --per-objective 4 --diversity 0.5 --out fv/",
                           "medlens featurevis --model m.pt --layer features.block3.act --channels 0-7 --data pneumoniamnist --references 4 --out fv/",
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
    p.add_argument("--data", help="bundled data set name or npz file, or a folder of scans or records (read through the "
                                   "model's recipe): show beside each channel the cases of its train split (a folder: "
                                   "every case) whose CRP relevance for the channel is largest (channel, neuron)")
    p.add_argument("--references", type=int, default=4, help="reference cases per channel with --data (default: 4)")
    p.add_argument("--composite", default="epsilon-plus", help="LRP composite of the reference cases (default: epsilon-plus)")
    add_out_folder(p, help="output folder")
    add_reference_flags(p)
    add_flags(p, "limit", "budget", "seed", "quiet", "multi-label")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from dataclasses import fields

    from medlens.app.featurevis import render_features
    from medlens.cli.inputs import recipe_options

    given = {f.name: getattr(args, f.name) for f in fields(FeaturevisRequest)}
    result = render_features(FeaturevisRequest(**{**given, "recipe": recipe_options(args)}))
    print(f"featurevis: {result.n} {result.objective} objective(s), {result.steps} steps in {result.seconds:.1f} s "
          f"({result.steps / result.seconds:.1f} steps/s) -> {result.out}")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
