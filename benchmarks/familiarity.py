"""Is this scan like the training data? The familiarity check on real files from elsewhere (issue 20, part 2).

    OMP_NUM_THREADS=1 python benchmarks/familiarity.py [--epochs 8] [--seed 0] [--limit 200] \
        [--out benchmarks/results/familiarity.json]

For a CNN trained on each bundled data set (``medlens train`` route: thresholds of the input and
feature distances are the 99th percentiles over the *validation* split, stored in the model file),
the check (:func:`medlens.evaluation.familiarity.familiarity`, the one the case report runs) is
run on files written to disk and read back through the case workflow, exactly as a user's files:

* the model's own *test* split (never used to choose a threshold): the false-alarm rate;
* inputs from elsewhere: the other bundled image modality, head-CT slices (brain window, from
  :mod:`medlens.data.synthetic.head_ct`; at their native 64 x 64 and resized to 28 x 28 so the
  distances alone are tested too), uniform noise, the own test images inverted and rotated
  (90 and 180 degrees), and the own test images at other resolutions (x4 and x8 upsampled);
  for the ECG model: noise, inverted and time-reversed beats, synthetic EEG segments.

Per source: the share flagged ``unlike_training_data`` and the AUROC of the check's score against
the own test split (score: the largest distance as a multiple of its threshold; a scan whose
native facts already differ ranks above every distance), and the AUROC of the distances alone.
Acceptance: every source AUROC >= 0.95 and false alarms on the own test split <= 5%. Stores the
numbers through ``_runner.write_result`` (``benchmarks/results/familiarity.json``, or ``--out``).
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _runner import options, quick_name, quick_option, run_and_report
from PIL import Image

IMAGE_SETS = ("pneumoniamnist", "breastmnist")
AUROC_BAR, FALSE_ALARM_BAR = 0.95, 0.05

#: The quick configuration: fewer epochs and cases from elsewhere (it checks that the numbers reproduce).
QUICK = {"epochs": 2, "limit": 40}


def auroc(negatives: list[float], positives: list[float]) -> float:
    """P(score of a positive > score of a negative), ties counted half (Mann-Whitney)."""
    neg, pos = np.asarray(negatives, dtype=float), np.asarray(positives, dtype=float)
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def _png(folder: Path, images: np.ndarray) -> Path:
    """Write ``(N, H, W)`` 8-bit greys as PNG files ``00000.png`` ... into ``folder``."""
    folder.mkdir(parents=True)
    for i, img in enumerate(images):
        Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8)).save(folder / f"{i:05d}.png")
    return folder


def _wfdb(folder: Path, beats: np.ndarray, fs: float) -> Path:
    import wfdb

    folder.mkdir(parents=True)
    for i, beat in enumerate(beats):
        wfdb.wrsamp(f"b{i:05d}", fs=fs, units=["mV"], sig_name=["ECG"], p_signal=beat[:, None].astype(np.float64),
                    fmt=["16"], adc_gain=[2000.0], baseline=[0], write_dir=str(folder))
    return folder


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    return np.stack([np.asarray(Image.fromarray(im.astype(np.float32)).resize((size, size), Image.BILINEAR))
                     for im in images])


def _head_ct_slices(n: int, seed: int) -> np.ndarray:
    """``(n, 64, 64)`` brain-window (40/80 HU) 8-bit axial slices of head-CT phantoms."""
    from medlens.data.synthetic.head_ct import make_head_ct

    data = make_head_ct(max(1, math.ceil(n / 8)), seed=seed)
    vols = data.volumes  # (N, D, H, W) HU
    depth = vols.shape[1]
    picks = [(i // 8, depth // 3 + (i % 8) * max(1, depth // 24)) for i in range(n)]
    slices = torch.stack([vols[c, z] for c, z in picks]).numpy()
    return np.clip((slices - 0.0) / 80.0, 0, 1) * 255.0


def image_sources(name: str, limit: int, seed: int) -> dict[str, np.ndarray]:
    from medlens.data import load_dataset

    everything = load_dataset(name, "test").inputs[:, 0].numpy() * 255.0
    own = everything[:limit]
    other_name = next(n for n in IMAGE_SETS if n != name)
    other = load_dataset(other_name, "test").inputs[:limit, 0].numpy() * 255.0
    rng = np.random.default_rng(seed)
    ct = _head_ct_slices(min(limit, 96), seed)
    return {
        "own test split": everything,
        f"{other_name} (other modality)": other,
        "head-CT slices, 64 x 64": ct,
        "head-CT slices at 28 x 28": _resize(ct, own.shape[-1]),
        "uniform noise": rng.integers(0, 256, size=own.shape).astype(np.float64),
        "own test inverted": 255.0 - own,
        "own test rotated 90": np.rot90(own, 1, axes=(1, 2)).copy(),
        "own test rotated 180": np.rot90(own, 2, axes=(1, 2)).copy(),
        "own test upsampled x4": _resize(own, own.shape[-1] * 4),
        "own test upsampled x8": _resize(own, own.shape[-1] * 8),
    }


def signal_sources(limit: int, seed: int) -> dict[str, np.ndarray]:
    from medlens.data import load_dataset
    from medlens.data.synthetic.eeg import make_eeg

    everything = load_dataset("ecg5000", "test").inputs[:, 0].numpy().astype(np.float64)
    own = everything[:limit]
    length = own.shape[-1]
    rng = np.random.default_rng(seed)
    eeg = make_eeg(min(limit, 64), n_channels=1, fs=35.0, seconds=length / 35.0, seed=seed).inputs[:, 0].numpy()
    return {
        "own test split": everything,
        "gaussian noise": rng.normal(size=own.shape),
        "own test inverted": -own,
        "own test time-reversed": own[:, ::-1].copy(),
        "synthetic EEG (other modality)": eeg.astype(np.float64),
    }


def check_source(model, meta, folder: Path) -> list[dict]:
    """The familiarity of every case of ``folder``, read through the model's recipe."""
    from medlens.app.inputs import model_cases
    from medlens.data.kinds import facts_of_model
    from medlens.evaluation.familiarity import familiarity

    facts = facts_of_model(meta)
    cases = model_cases(str(folder), meta)
    out = []
    for i in range(len(cases)):
        case = cases.case(i)
        f = familiarity(model, case.x, meta.get("familiarity"), reading=case.reading, facts=facts)
        native = any(not r.endswith("held-out cases") for r in f.reasons)
        out.append({"unlike": bool(f.unlike), "score": f.score, "native": native,
                    "codes": sorted({w["code"] for w in f.warnings})})
    return out


def _combined(rows: list[dict]) -> list[float]:
    return [math.inf if r["native"] else r["score"] for r in rows]


def run(args: argparse.Namespace) -> dict:
    from medlens.app.recipes import train_on_dataset

    t0 = time.perf_counter()
    results: dict[str, dict] = {}
    for name in (*IMAGE_SETS, "ecg5000"):
        model, meta = train_on_dataset(name, epochs=args.epochs, seed=args.seed, progress=False)
        sources = signal_sources(args.limit, args.seed) if name == "ecg5000" else image_sources(name, args.limit, args.seed)
        table = {}
        with tempfile.TemporaryDirectory(prefix="medlens-familiarity-") as scratch:
            rows_by_source = {}
            for k, (source, arrays) in enumerate(sources.items()):
                folder = Path(scratch) / f"s{k}"
                _wfdb(folder, arrays, 250.0) if name == "ecg5000" else _png(folder, arrays)
                rows_by_source[source] = check_source(model, meta, folder)
        own = rows_by_source["own test split"]
        for source, rows in rows_by_source.items():
            entry = {"n": len(rows), "flagged": float(np.mean([r["unlike"] for r in rows])),
                     "native_facts_differ": float(np.mean([r["native"] for r in rows])),
                     "downsampled_warning": float(np.mean(["downsampled" in r["codes"] for r in rows]))}
            if source != "own test split":
                entry["auroc"] = auroc(_combined(own), _combined(rows))
                entry["auroc_distances_only"] = auroc([r["score"] for r in own], [r["score"] for r in rows])
            table[source] = entry
        others = [v["auroc"] for k, v in table.items() if k != "own test split"]
        false_alarms = table["own test split"]["flagged"]
        results[name] = {
            "test_accuracy": meta["test"]["accuracy"], "val_cases_for_thresholds": meta["familiarity"]["n_val"],
            "thresholds_q99": {k: v["q99"] for k, v in meta["familiarity"]["scores"].items()},
            "sources": table, "false_alarms_own_test": false_alarms, "min_auroc": min(others),
            "passes": bool(min(others) >= AUROC_BAR and false_alarms <= FALSE_ALARM_BAR),
        }
        print(f"\n{name} (test accuracy {meta['test']['accuracy']:.3f}; thresholds from {meta['familiarity']['n_val']} "
              f"validation cases)")
        print(f"  {'source':34s} {'n':>4s} {'flagged':>8s} {'AUROC':>7s} {'dist only':>9s}")
        for source, v in table.items():
            print(f"  {source:34s} {v['n']:4d} {v['flagged']:8.3f} {v.get('auroc', float('nan')):7.3f} "
                  f"{v.get('auroc_distances_only', float('nan')):9.3f}")
    return {
        "epochs": args.epochs, "limit": args.limit,
        "bars": {"auroc": AUROC_BAR, "false_alarms": FALSE_ALARM_BAR},
        "calibration_split": "validation", "acceptance_split": "test",
        "data_sets": results, "passes": all(r["passes"] for r in results.values()),
        "seconds": time.perf_counter() - t0,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options(p, "familiarity")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--limit", type=int, default=200, help="cases per source from elsewhere (the own test split is used whole)")
    quick_option(p, QUICK)
    args = p.parse_args(argv)
    result_name = quick_name(args, "familiarity", QUICK)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    def report(log) -> dict:
        result = run(args)
        log(f"passes: {result['passes']}")
        return result

    return run_and_report(report, args.out, name=result_name, seed=args.seed, config=vars(args), echo=False)


if __name__ == "__main__":
    raise SystemExit(main())
