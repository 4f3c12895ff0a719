"""Nearly blank scans and the familiarity check: the share of the least varying training case below
which a scan is "unlike the training data" (``medlens.evaluation.familiarity.LEAST_CONTRAST_SHARE``).

    OMP_NUM_THREADS=1 python benchmarks/familiarity_contrast.py [--draws 200] [--seed 0] \
        [--out benchmarks/results/familiarity_contrast.json]

A flat grey image, one with faint noise, or a radiograph with almost no contrast lies near the
*mean* training image, so the Mahalanobis distances call it typical. The rule: every channel of
the scan (after the recipe) varies, as a standard deviation, less than ``share`` times the least
varying training case. Per data set and candidate share (1, 0.75, 0.5):

* false alarms: the share of the validation and test cases the rule calls unlike, with the full
  training split as the reference and with references of only 20 training cases (``--draws``
  random draws; the least of a few cases is not far below the rest);
* detections: 100 test cases at a tenth, a fifth and three tenths of their contrast (about their
  mean), and flat 0.5 with Gaussian noise of sd 0.005, 0.01 and 0.02.

The share was chosen on DESIGN (PneumoniaMNIST) only; HELDOUT (BreastMNIST and the synthetic EEG
of ``medlens generate eeg``) was scored once with it. Stored through ``_runner.write_result``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from _runner import options, quick_name, quick_option, run_and_report

from medlens.data import load_dataset
from medlens.data.synthetic.eeg import write_eeg_npz

DESIGN = ("pneumoniamnist",)
HELDOUT = ("breastmnist", "eeg")
SHARES = (1.0, 0.75, 0.5)
QUICK = {"draws": 40}


def _splits(name: str, seed: int) -> dict[str, torch.Tensor]:
    if name == "eeg":  # the records of ``medlens generate eeg``
        with tempfile.TemporaryDirectory() as tmp:
            path = write_eeg_npz(Path(tmp) / "eeg.npz", seed=seed)
            return {s: load_dataset(str(path), s).inputs for s in ("train", "val", "test")}
    return {s: load_dataset(name, s).inputs for s in ("train", "val", "test")}


def _least_std(x: torch.Tensor) -> torch.Tensor:
    """Each case's smallest per-channel standard deviation (the rule asks every channel)."""
    return x.double().flatten(2).std(-1).amin(1)


def _perturbed(test: torch.Tensor, gen: torch.Generator) -> dict[str, torch.Tensor]:
    x = test[:100].double()
    mean = x.mean(tuple(range(2, x.ndim)), keepdim=True)
    out = {f"contrast x{c}": mean + (x - mean) * c for c in (0.1, 0.2, 0.3)}
    out.update({f"flat 0.5 + noise sd {s}": 0.5 + s * torch.randn(x.shape, generator=gen, dtype=torch.float64)
                for s in (0.005, 0.01, 0.02)})
    return out


def score(name: str, draws: int, seed: int) -> dict:
    gen = torch.Generator().manual_seed(seed)
    splits = _splits(name, seed)
    sd = {k: _least_std(v) for k, v in splits.items()}
    perturbed = {k: _least_std(v) for k, v in _perturbed(splits["test"], gen).items()}
    small = [sd["train"][torch.randperm(len(sd["train"]), generator=gen)[:20]].min() for _ in range(draws)]
    rows = {}
    for share in SHARES:
        bar = share * sd["train"].min()
        rows[str(share)] = {
            "false_alarms": {"val": float((sd["val"] < bar).double().mean()), "test": float((sd["test"] < bar).double().mean()),
                             "val, references of 20 training cases": float(torch.stack(
                                 [(sd["val"] < share * least).double().mean() for least in small]).mean())},
            "detected": {k: float((v < bar).double().mean()) for k, v in perturbed.items()},
        }
    return {"cases": {k: len(v) for k, v in splits.items()}, "least_training_std": float(sd["train"].min()), "shares": rows}


def run(args: argparse.Namespace) -> dict:
    return {"draws": args.draws, "design": {n: score(n, args.draws, args.seed) for n in DESIGN},
            "heldout": {n: score(n, args.draws, args.seed) for n in HELDOUT}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options(p, "familiarity_contrast")
    p.add_argument("--draws", type=int, default=200, help="references of 20 training cases drawn per data set")
    quick_option(p, QUICK)
    args = p.parse_args(argv)
    name = quick_name(args, "familiarity_contrast", QUICK)
    torch.set_num_threads(args.threads)
    return run_and_report(lambda _log: run(args), args.out, name=name, seed=args.seed, config=vars(args))


if __name__ == "__main__":
    raise SystemExit(main())
