"""``medlens generate``: write a ground-truth benchmark data set as a MedMNIST-layout npz.

``lesions`` inserts lesions into the bundled chest X-rays (exact masks and attributes);
``lesions-shortcut`` adds a marker that predicts the label in training but not in test;
``eeg`` writes multichannel EEG with spike-and-wave bursts at known times; ``reports`` writes
radiology-style reports whose label rests on known rationale words; ``head-ct`` writes head-CT
phantoms in HU with haemorrhages of five subtypes and exact masks as a NIfTI or DICOM series
folder (``--out`` is then a folder, ``--format``): scans in ``images/``, masks in ``masks/``, and
``labels.csv`` (case,label,...) that ``explain``/``evaluate``/``audit --labels`` read.
"""

from __future__ import annotations

import argparse

from medlens.app.generate import KINDS, GenerateRequest


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, command_parser

    p = command_parser(sub, "generate", help="write a ground-truth benchmark data set (npz)", doc=__doc__, examples=[
        "medlens generate lesions --out lesions.npz",
        "medlens generate lesions-shortcut --size 64 --n-train 800 --out shortcut.npz",
        "medlens generate lesions --spatial-dims 3 --out lesions3d.npz",
        "medlens generate eeg --seed 3 --out eeg.npz",
        "medlens generate head-ct --phantoms 20 --format dicom --out head_ct/ && medlens explain --model M --input head_ct/images \\",
        "    --window brain --window subdural --window bone --method integrated_gradients --out maps/",
    ])
    p.add_argument("kind", choices=KINDS)
    p.add_argument("--out", required=True, help="npz file to write (head-ct: a new folder)")
    p.add_argument("--n-train", type=int, default=None, help="training cases (default: the generator's)")
    p.add_argument("--spatial-dims", type=int, default=2, choices=(2, 3), help="lesions only: 2D slices or 3D volumes")
    p.add_argument("--size", type=int, default=None, help="lesions only: image side in pixels")
    p.add_argument("--format", default="nifti", choices=("nifti", "dicom"), help="head-ct only: NIfTI files or DICOM series")
    p.add_argument("--phantoms", type=int, default=20, help="head-ct only: number of phantoms (default 20)")
    add_flags(p, "seed", "quiet")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medlens.app.generate import generate_benchmark

    print(generate_benchmark(GenerateRequest(
        kind=args.kind, out=args.out, seed=args.seed, n_train=args.n_train, spatial_dims=args.spatial_dims,
        size=args.size, phantoms=args.phantoms, format=args.format,
    )))
    return 0
