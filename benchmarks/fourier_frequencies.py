"""Feature visualisation of fine patterns (issue 14, item 4): planted detectors across spatial frequencies.

Run from the repository root::

    python benchmarks/fourier_frequencies.py [--seeds 0 1] [--steps 96]

A CNN whose first-layer channel 0 is a planted oriented grating (11x11 kernel, 30 degrees, period 3
to 12 pixels) is visualised on 40x40 inputs, three images per run, with: the render default
("fourier": 1/f^0.5 spectrum, per-image normalised Adam), the pixel parameterisation (Adam), and
the former default (1/f spectrum with per-coordinate Adam). Printed: the best-phase correlation of
the images with the grating, averaged over 16x16 windows (a random image scores 0.05-0.12). Stores
the table through ``_runner.write_result`` (``benchmarks/results/fourier_frequencies.json``);
``--quick`` (``QUICK``) is the configuration the slow test re-runs against its stored file.
"""

from __future__ import annotations

import argparse
import math

import torch
from _runner import options, provenance, write_result

from tests.featurevis.planted import best_phase_correlation, planted_detector

THETA, KERNEL, SIZE = math.radians(30), 11, 40
#: The quick configuration (seconds): one seed, fewer steps, three periods.
QUICK = {"seeds": [0], "steps": 24, "periods": [3.0, 5.5, 12.0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options(parser, "fourier_frequencies", seed=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=96)
    parser.add_argument("--periods", type=float, nargs="+", default=[3.0, 4.5, 5.5, 8.0, 12.0])
    parser.add_argument("--quick", action="store_true", help=f"the quick configuration {QUICK}")
    args = parser.parse_args()
    if args.quick:
        vars(args).update(QUICK)

    import medlens.featurevis as fv
    from medlens.core.threads import torch_threads

    class FormerDefault(fv.FourierImage):
        def optimizer(self, lr):
            return torch.optim.Adam(self.params, lr=lr)

    shape = (3, 1, SIZE, SIZE)
    periods = tuple(args.periods)
    names = ("default", "pixel", "former default")
    table = {n: [] for n in names}
    with torch_threads(args.threads):
        origin = provenance(seed=args.seeds[0], config=vars(args))
        for period in periods:
            model = planted_detector(period, THETA, KERNEL, SIZE)
            row = {n: [] for n in names}
            for seed in args.seeds:
                params = {"default": "fourier", "pixel": "pixel",
                          "former default": FormerDefault(shape, generator=torch.Generator().manual_seed(seed))}
                for name, param in params.items():
                    images, _ = fv.render(model, fv.channel("features.block1.act", 0), shape, steps=args.steps,
                                          param=param, seed=seed)
                    row[name].append(sum(best_phase_correlation(images[i, 0], period, THETA) for i in range(3)) / 3)
            for n in names:
                table[n].append(sum(row[n]) / len(row[n]))
            print(f"period {period:4.1f} px: " + ", ".join(f"{n} {table[n][-1]:.3f}" for n in names), flush=True)
    means = {n: sum(table[n]) / len(table[n]) for n in names}
    ratio = sum(table["default"]) / sum(table["pixel"])
    print("mean over periods: " + ", ".join(f"{n} {means[n]:.3f}" for n in names) + f"; default / pixel = {ratio:.3f}")
    numbers = {"periods": list(periods), "correlation": table, "mean_over_periods": means, "default_over_pixel": ratio}
    name = "fourier_frequencies" + ("-quick" if args.quick else "")
    print(f"stored {write_result(name, numbers, seed=args.seeds[0], config=vars(args), path=args.out, origin=origin)}")


if __name__ == "__main__":
    main()
