"""Lesion shapes that can be told apart (issue 13, part 4): mask statistics per shape, then the
generated explanations' attribute accuracy re-measured on the regenerated benchmark.

    OMP_NUM_THREADS=2 python benchmarks/lesion_shapes.py [--epochs 10] [--skip-interpnet]

1. generates the 2D lesion benchmark (64x64, seed 0; 800/100/200 images) and prints, per shape,
   the median and 5-95 % range of the masks' axis ratio and solidity
   (``medlens.data.synthetic.lesions.mask_statistics``), and how often a two-threshold rule on the mask
   alone names the shape;
2. trains the InterpNET-style explainer (``medlens train --arch interpnet``) on it and prints
   BLEU-4 and the attribute accuracy (shape among them) of its sentences, greedy and beam.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

from _runner import provenance, quick_name, quick_option, write_result
from medlens.data.synthetic.lesions import LESION_SHAPES, mask_statistics, write_lesion_benchmark

#: The quick configuration: the mask statistics and one epoch of InterpNet.
QUICK = {"epochs": 1, "threads": 1}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--skip-interpnet", action="store_true")
    p.add_argument("--out", default=None, help="where to store the numbers (default benchmarks/results/lesion_shapes.json)")
    quick_option(p, QUICK)
    args = p.parse_args(argv)
    result_name = quick_name(args, "lesion_shapes", QUICK)
    torch.set_num_threads(args.threads)
    origin = provenance(seed=0, config=vars(args))  # the tree as the run starts
    t0 = time.perf_counter()
    import numpy as np

    with tempfile.TemporaryDirectory() as tmp:
        path = write_lesion_benchmark(Path(tmp) / "lesions.npz", spatial_dims=2, size=64, seed=0)
        data = np.load(path)
        numbers: dict = {"mask_statistics": {}}
        masks = np.concatenate([data[f"{s}_masks"] for s in ("train", "val", "test")])
        shapes = torch.as_tensor(np.concatenate([data[f"{s}_lesion_shape"] for s in ("train", "val", "test")]))
        st = mask_statistics(masks)
        q = torch.tensor([0.05, 0.5, 0.95], dtype=torch.float64)
        for k, name in enumerate(LESION_SHAPES):
            sel = shapes == k
            numbers["mask_statistics"][name] = {
                "n": int(sel.sum()),
                **{key: [round(float(v), 3) for v in st[key][sel].quantile(q)] for key in ("axis_ratio", "solidity")},
            }
        pos = shapes >= 0
        ar, so = st["axis_ratio"], st["solidity"]
        rule = torch.where(ar > 1.6, 1, torch.where((so < 0.9) | (ar > 1.2), 2, 0))
        numbers["shape_rule_accuracy"] = float((rule[pos] == shapes[pos]).float().mean())
        print(json.dumps(numbers, indent=1), flush=True)
        if not args.skip_interpnet:
            from medlens.selfexplain.interpnet import train_on_lesions

            _, meta = train_on_lesions(path, epochs=args.epochs, seed=0, progress=False)
            numbers["interpnet"] = {"test": meta["test"], "explanations": meta["explanations"]}
            print(json.dumps(numbers["interpnet"], indent=1))
    print(f"stored {write_result(result_name, numbers, seed=0, config=vars(args), path=args.out, origin=origin)}")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
