"""The recipe flags of the commands that read a user's files, and the request part they fill."""

from __future__ import annotations

import argparse

from medlens.app.inputs import NORMALISATIONS, RecipeOptions


def add_recipe_flags(p: argparse.ArgumentParser) -> None:
    """``--recipe``, ``--size``, ``--normalize``, ``--window``, ``--start``, ``--leads``, ``--slice``,
    ``--fs``: how a file
    becomes the model's input."""
    p.add_argument("--recipe", metavar="FILE", default=None,
                   help="preprocessing recipe (JSON or YAML; default: the one stored in the model file)")
    p.add_argument("--size", default=None, metavar="N,N[,N]",
                   help="the model's input size per spatial axis (e.g. 224,224), for a model file that does not say")
    p.add_argument("--normalize", choices=NORMALISATIONS, default=None,
                   help="intensity normalisation of the input (default: the recipe's)")
    p.add_argument("--window", action="append", metavar="C,W|NAME", default=None,
                   help="CT window in HU, repeatable, one channel each (40,80 or brain, subdural, bone, lung, ...)")
    p.add_argument("--start", type=float, default=None, metavar="SECONDS",
                   help="signals: start of the window the model sees, in seconds")
    p.add_argument("--leads", default=None, metavar="A,B",
                   help="signals: comma-separated lead names the model takes, in order "
                        "(semicolons when a name holds a comma: 'sig 0, fmt 8;sig 1, fmt 16')")
    p.add_argument("--slice", type=int, default=None, metavar="K",
                   help="volumes given to a 2-D model: the slice the model sees (a NIfTI volume's axial slices, a DICOM series' slices); "
                        "without it such an input is refused")
    p.add_argument("--fs", type=float, default=None, metavar="HZ",
                   help="signals: the sampling rate of the model's samples, for a model file that does not record it "
                        "(the record is resampled to it)")


def add_reference_flags(p: argparse.ArgumentParser) -> None:
    """``--labels``, ``--show-identifiers`` and the recipe flags of a command whose ``--data`` may be
    a folder of scans (basis, concepts)."""
    p.add_argument("--labels", default=None, metavar="FILE",
                   help="a folder of scans: CSV with columns case,label (a class index or name); without it labels are unknown")
    p.add_argument("--show-identifiers", action="store_true",
                   help="name scans by their file paths in every output (default: pseudonymous ids, the files "
                        "listed in identifiers.csv only)")
    add_recipe_flags(p)


def recipe_options(args: argparse.Namespace) -> RecipeOptions:
    """The recipe flags as the request's :class:`~medlens.app.inputs.RecipeOptions`."""
    return RecipeOptions(
        recipe=getattr(args, "recipe", None), size=getattr(args, "size", None),
        normalize=getattr(args, "normalize", None),
        windows=tuple(args.window) if getattr(args, "window", None) else None,
        start=getattr(args, "start", None), leads=getattr(args, "leads", None),
        slice=getattr(args, "slice", None), fs=getattr(args, "fs", None),
    )


def add_text_flags(p: argparse.ArgumentParser) -> None:
    """``--text-column`` and ``--label-column``: the columns of a notes file (CSV or JSON Lines)."""
    p.add_argument("--text-column", default="text", metavar="NAME",
                   help="notes: the column holding each note's text (default: text)")
    p.add_argument("--label-column", default="label", metavar="NAME",
                   help="notes: the column holding each note's label (default: label)")
