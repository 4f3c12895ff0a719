"""Calibrate the audit's shortcut flag on one grid of runs and accept it on another.

    OMP_NUM_THREADS=1 python benchmarks/audit_calibration.py --grid design   --out calib
    OMP_NUM_THREADS=1 python benchmarks/audit_calibration.py --grid heldout  --out calib
    python benchmarks/audit_calibration.py --grid heldout --out calib --score-only   # re-score stored audits

Each run generates the lesion benchmark (real chest X-ray texture, exact lesion masks) at one
image size, pastes a square marker of a given size, corner and intensity into the training
images with a given *shortcut strength* (the share of training and validation cases whose
marker agrees with the label: marker on a positive with probability ``rate``, on a negative
with ``1 - rate``; a clean run has no marker at all), trains the reference CNN for a given
number of epochs, and audits the test split, where the marker is pasted on half the cases
independently of the label. What the marker does to the model is measured directly: the
share of unmarked test cases whose prediction changes when the marker is pasted (*flip
rate*).

The audit is run with its cluster method only (SpRAy clusters the SmoothGrad maps; the other
methods and the faithfulness metrics do not enter the flag), and its cases are stored, so a
rule can be re-scored on the stored runs without recomputing them (``--score-only``).

Acceptance (issue 20) on a held-out grid: on clean models at most 5 % of clusters flagged
over all runs (a cluster counts when its own test flags it or it holds a case flagged through a
hotspot group); on shortcut models whose marker flips at least 30 % of predictions, flagged
cases against marked cases with precision and recall >= 0.8 in at least 90 % of runs.

Grids and rule versions (:data:`RULE_VERSION`): v1 was designed on DESIGN and failed HELDOUT;
v2 was designed on DESIGN and failed HELDOUT2; v3 was designed on DESIGN, HELDOUT and HELDOUT2
(all seen, so all design data) and frozen before HELDOUT3 was written, run and scored once.
A grid's result is ``benchmarks/results/audit_calibration_GRID.json`` unless ``--result`` names
another file (the v3 re-scores of the seen grids: ``audit_calibration_GRID_v3rule.json``; the
files of v1 and v2 keep their names as history).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]

#: The rule :class:`medlens.audit.strategies.FlagRule` implements now (module docstrings there):
#: v1 flat fill; v2 blurred fill and per-case randomisation; v3 adds the hotspot groups
#: (:mod:`medlens.audit.hotspots`), the family of tests that can reach the level, and "matters
#: more than elsewhere".
RULE_VERSION = "v3"


@dataclass(frozen=True)
class Run:
    """One point of a grid."""

    seed: int
    epochs: int
    size: int
    marker_frac: float = 1 / 12  # side of the marker as a share of the image side
    corner: int = 0  # 0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right
    intensity: float = 1.0  # the marker's pixel value (images are in [0, 1])
    rate: float | None = 0.9  # shortcut strength; None: a clean run (no marker in training)

    @property
    def name(self) -> str:
        kind = "clean" if self.rate is None else f"rate{self.rate:g}"
        return (f"s{self.seed}-e{self.epochs}-px{self.size}-m{self.marker_frac:.3f}-c{self.corner}"
                f"-i{self.intensity:g}-{kind}")


# The design grid: the only runs v1 and v2 were chosen on (v3: design data with HELDOUT, HELDOUT2).
DESIGN = [
    Run(seed=0, epochs=15, size=64),
    Run(seed=1, epochs=15, size=64),
    Run(seed=0, epochs=6, size=64),
    Run(seed=0, epochs=3, size=64),
    Run(seed=2, epochs=10, size=48, rate=0.8),
    Run(seed=3, epochs=10, size=64, corner=3, intensity=0.0),
    Run(seed=0, epochs=15, size=64, rate=None),
    Run(seed=1, epochs=6, size=64, rate=None),
    Run(seed=2, epochs=3, size=48, rate=None),
    Run(seed=3, epochs=10, size=96, rate=None),
]

# The held-out grid of v1: other seeds, lengths, sizes, markers and strengths (seen since: design
# data for v3).
HELDOUT = [
    Run(seed=10, epochs=20, size=64),
    Run(seed=11, epochs=8, size=32, marker_frac=1 / 8),
    Run(seed=12, epochs=12, size=96, corner=1),
    Run(seed=13, epochs=5, size=64, rate=0.95),
    Run(seed=14, epochs=12, size=64, corner=2, intensity=0.7, rate=0.85),
    Run(seed=15, epochs=15, size=128, marker_frac=1 / 16),
    Run(seed=16, epochs=4, size=48, rate=0.7),
    Run(seed=17, epochs=12, size=64, rate=1.0),
    Run(seed=10, epochs=20, size=64, rate=None),
    Run(seed=11, epochs=8, size=32, rate=None),
    Run(seed=12, epochs=5, size=96, rate=None),
    Run(seed=13, epochs=12, size=128, rate=None),
    Run(seed=14, epochs=3, size=64, rate=None),
    Run(seed=15, epochs=16, size=48, rate=None),
]

# A second held-out grid of fresh runs (new seeds and settings), trained after the first held-out
# grid had been scored: the acceptance of v2 (seen since: design data for v3).
HELDOUT2 = [
    Run(seed=20, epochs=15, size=64, corner=1),
    Run(seed=21, epochs=10, size=48, marker_frac=1 / 10, rate=0.85),
    Run(seed=22, epochs=20, size=32, corner=3),
    Run(seed=23, epochs=8, size=64, corner=2, intensity=0.0, rate=0.95),
    Run(seed=24, epochs=12, size=96, marker_frac=1 / 16, rate=1.0),
    Run(seed=25, epochs=6, size=64),
    Run(seed=20, epochs=15, size=64, rate=None),
    Run(seed=21, epochs=8, size=48, rate=None),
    Run(seed=22, epochs=20, size=32, rate=None),
    Run(seed=23, epochs=12, size=96, rate=None),
]

# A third held-out grid of fresh runs (seeds never trained before), written after rule v3 had been
# frozen (commit e4d97b8) on the three grids above (all of them design data for v3), run once and
# scored once: the acceptance of v3.
HELDOUT3 = [
    Run(seed=30, epochs=12, size=64, corner=3),
    Run(seed=31, epochs=8, size=48, marker_frac=1 / 10, corner=1, intensity=0.0),
    Run(seed=32, epochs=16, size=96, corner=2, intensity=0.7, rate=0.95),
    Run(seed=33, epochs=10, size=32, marker_frac=1 / 8, rate=0.85),
    Run(seed=34, epochs=20, size=128, marker_frac=1 / 16, corner=1, rate=1.0),
    Run(seed=35, epochs=6, size=64, corner=2, intensity=0.0),
    Run(seed=36, epochs=14, size=48, corner=3, intensity=0.7, rate=0.8),
    Run(seed=37, epochs=3, size=64, rate=1.0),
    Run(seed=38, epochs=10, size=96, marker_frac=1 / 10, intensity=0.0, rate=0.75),
    Run(seed=39, epochs=18, size=64, marker_frac=1 / 14, corner=1, intensity=0.7, rate=0.7),
    Run(seed=30, epochs=12, size=64, rate=None),
    Run(seed=31, epochs=20, size=32, rate=None),
    Run(seed=32, epochs=8, size=128, rate=None),
    Run(seed=33, epochs=4, size=48, rate=None),
    Run(seed=34, epochs=16, size=96, rate=None),
]

# The quick configuration (``--quick``, about a minute at one thread): one small shortcut run, not a
# grid to design or accept on; ``make check-benchmarks`` re-runs it against results/audit_calibration-quick.json.
QUICK = [Run(seed=40, epochs=10, size=32, marker_frac=1 / 8, rate=1.0)]

GRIDS = {"design": DESIGN, "heldout": HELDOUT, "heldout2": HELDOUT2, "heldout3": HELDOUT3, "quick": QUICK}


def _marker_box(run: Run) -> tuple[slice, slice]:
    side = max(2, round(run.size * run.marker_frac))
    offset = max(1, round(run.size / 32))
    lo, hi = offset, offset + side
    rows = slice(lo, hi) if run.corner in (0, 1) else slice(run.size - hi, run.size - lo)
    cols = slice(lo, hi) if run.corner in (0, 2) else slice(run.size - hi, run.size - lo)
    return rows, cols


def make_data(run: Run, path: Path) -> None:
    """The lesion benchmark with the run's marker pasted (train/val by strength, test at 0.5)."""
    from medlens.core.random import generator
    from medlens.data.synthetic.lesions import make_lesion_benchmark

    arrays = make_lesion_benchmark(size=run.size, n_train=600, n_val=100, n_test=200, seed=run.seed)
    box = _marker_box(run)
    for split in ("train", "val", "test"):
        images, labels, masks = arrays[f"{split}_images"], arrays[f"{split}_labels"], arrays[f"{split}_masks"]
        marked = np.zeros(images.shape, dtype=bool)
        draw = generator(run.seed, "calibration-marker", split)
        for i in range(len(images)):
            if split == "test":
                p = 0.5 if run.rate is not None else 0.0
            else:
                p = 0.0 if run.rate is None else (run.rate if labels[i] == 1 else 1.0 - run.rate)
            u = float(torch.rand((), generator=draw))
            region = np.zeros(images.shape[1:], dtype=bool)
            region[box] = True
            if u < p and not (masks[i].astype(bool) & region).any():
                images[i][box] = run.intensity
                marked[i][box] = True
        arrays[f"{split}_images"] = images
        arrays[f"{split}_marker_masks"] = marked
    np.savez_compressed(path, **arrays)


def flip_rate(model: torch.nn.Module, run: Run, data: Path) -> float:
    """Share of unmarked test cases whose prediction changes when the marker is pasted."""
    from medlens.core.checks import model_outputs
    from medlens.core.engine import Budget
    from medlens.data import load_dataset

    test = load_dataset(data, "test")
    with np.load(data) as z:
        marked = z["test_marker_masks"].reshape(len(test.labels), -1).any(1)
    x = test.inputs[torch.from_numpy(~marked)]
    pasted = x.clone()
    rows, cols = _marker_box(run)
    pasted[:, :, rows, cols] = run.intensity
    budget = Budget(batch_size=64)
    with torch.inference_mode():
        before = model_outputs(model.eval(), x, budget).argmax(1)
        after = model_outputs(model.eval(), pasted, budget).argmax(1)
    return float((before != after).float().mean())


def execute(run: Run, out: Path) -> dict:
    """Data, model and audit of one run (each reused when already in ``out``)."""
    from medlens.app.recipes import train_on_dataset
    from medlens.audit.cases import AuditSettings
    from medlens.audit.run import run_audit
    from medlens.audit.sources import SourceSpec
    from medlens.models import load_model, save_model

    folder = out / run.name
    folder.mkdir(parents=True, exist_ok=True)
    data, model_file = folder / "data.npz", folder / "model.pt"
    if not data.exists():
        make_data(run, data)
    if not model_file.exists():
        model, meta = train_on_dataset(str(data), epochs=run.epochs, seed=run.seed, progress=False)
        save_model(model, model_file, meta)
    model, meta = load_model(model_file)
    facts_file = folder / "facts.json"
    if not facts_file.exists():
        facts = {"flip_rate": flip_rate(model, run, data) if run.rate is not None else 0.0,
                 "test_accuracy": meta["test"]["accuracy"], "test_auroc": meta["test"]["auroc"]}
        facts_file.write_text(json.dumps(facts))
    settings = AuditSettings(methods=("smoothgrad",), metrics=(), seed=run.seed)
    spec = SourceSpec(str(data), "test", tuple(meta["input_shape"]))
    run_audit(model, spec, folder / "audit", settings, meta=meta)
    return json.loads(facts_file.read_text())


def score(run: Run, out: Path, rule) -> dict:
    """Flags of ``rule`` on a stored run against the marked cases."""
    from medlens.audit.run import analyse
    from medlens.audit.sources import SourceSpec
    from medlens.models import load_model

    folder = out / run.name
    facts = json.loads((folder / "facts.json").read_text())
    model, meta = load_model(folder / "model.pt")
    spec = SourceSpec(str(folder / "data.npz"), "test", tuple(meta["input_shape"]))
    analysis = analyse(folder / "audit", rule=rule, parquet=False, model=model, spec=spec)
    with np.load(folder / "data.npz") as z:
        marked = z["test_marker_masks"].reshape(len(z["test_labels"]), -1).any(1)
    clusters = [c for cs in analysis.strategies.classes for c in cs.clusters]
    groups = [c for cs in analysis.strategies.classes for c in getattr(cs, "hotspots", [])]
    hit = set(analysis.strategies.flagged_cases())
    # a cluster counts as flagged when its own test flags it or it holds a case flagged by a
    # hotspot group's test (v3): on clean runs, the share of clusters holding any flagged case
    flagged_clusters = [c for c in clusters if c.flagged or hit & set(c.members)]
    flagged = {int(analysis.results[i].case) for i in hit}
    undecided = sum(c.verdict == "undecided" for c in clusters)
    marked_cases = {int(analysis.results[i].case) for i in range(len(analysis.results))
                    if marked[int(analysis.results[i].case)]}
    tp = len(flagged & marked_cases)
    whole = {int(analysis.results[i].case) for c in clusters if c.flagged for i in c.members}
    return {
        "run": run.name, **asdict(run), **facts,
        "clusters": len(clusters), "flagged_clusters": len(flagged_clusters),
        "undecided_clusters": undecided, "hotspot_groups": len(groups),
        "flagged_hotspot_groups": sum(c.flagged for c in groups),
        "undecided_hotspot_groups": sum(c.verdict == "undecided" for c in groups),
        "flagged_cases": len(flagged), "marked_cases": len(marked_cases),
        "precision": tp / len(flagged) if flagged else (math.nan if marked_cases else 1.0),
        "recall": tp / len(marked_cases) if marked_cases else math.nan,
        # for information: every member of a flagged cluster counted as flagged
        "cluster_members_precision": len(whole & marked_cases) / len(whole) if whole else math.nan,
        "cluster_members_recall": len(whole & marked_cases) / len(marked_cases) if marked_cases else math.nan,
        "per_cluster": [{"class": c.predicted_class, "hotspot": c.hotspot, "size": c.size,
                         "marked": sum(bool(marked[int(analysis.results[i].case)]) for i in c.members),
                         "flagged": c.flagged, "verdict": c.verdict,
                         "misplaced": c.misplaced, "p_value": c.p_value, "effect": c.effect,
                         "change": c.change, "null_change": c.null_change, "n_tested": c.n_tested,
                         "flagged_cases": len(c.flagged_members),
                         "flagged_marked": sum(bool(marked[int(analysis.results[i].case)]) for i in c.flagged_members),
                         "region": list(c.region), "reason": c.reason} for c in clusters + groups],
    }


def acceptance(rows: list[dict]) -> dict:
    clean = [r for r in rows if r["rate"] is None]
    driven = [r for r in rows if r["rate"] is not None and r["flip_rate"] >= 0.3]
    flagged_clean = sum(r["flagged_clusters"] for r in clean)
    clusters_clean = sum(r["clusters"] for r in clean)
    good = [r for r in driven if r["precision"] >= 0.8 and r["recall"] >= 0.8]
    return {
        "clean_runs": len(clean), "clean_clusters": clusters_clean, "clean_flagged_clusters": flagged_clean,
        "clean_flag_share": flagged_clean / clusters_clean if clusters_clean else math.nan,
        "driven_runs": len(driven), "driven_runs_meeting_0.8": len(good),
        "driven_share_meeting_0.8": len(good) / len(driven) if driven else math.nan,
        "passed": (clusters_clean == 0 or flagged_clean / clusters_clean <= 0.05)
        and (not driven or len(good) / len(driven) >= 0.9),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", choices=sorted(GRIDS), default=None, help="the grid (required unless --quick)")
    parser.add_argument("--quick", action="store_true", help="the quick run (grid 'quick') in a temporary folder")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    parser.add_argument("--out", default=None, help="the working folder (default calib; with --quick a temporary one)")
    parser.add_argument("--score-only", action="store_true", help="re-score stored runs only")
    parser.add_argument("--only", type=int, nargs="*", help="indices of the grid's runs to execute")
    parser.add_argument("--result", default=None, help="JSON file (default benchmarks/results/audit_calibration_GRID.json)")
    args = parser.parse_args(argv)
    if args.quick:
        args.grid = "quick"
    elif args.grid is None:
        parser.error("--grid is required (or --quick)")
    if args.quick and args.out is None:
        with tempfile.TemporaryDirectory() as tmp:
            return _run(args, Path(tmp))
    return _run(args, Path(args.out or "calib"))


def _run(args: argparse.Namespace, out: Path) -> int:
    from medlens.audit.strategies import FlagRule

    torch.set_num_threads(args.threads)
    grid = GRIDS[args.grid]
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from _runner import provenance, write_result

    # the code that ran: taken before the runs, so edits made while they run do not count
    origin = provenance(seed=grid[0].seed, config={"grid": args.grid, "runs": [r.name for r in grid],
                                                          "out": None if args.quick else str(out)})
    chosen = [grid[i] for i in args.only] if args.only else grid
    if not args.score_only:
        for run in chosen:
            start = time.perf_counter()
            facts = execute(run, out)
            print(f"{run.name}: {facts} ({time.perf_counter() - start:.0f} s)", flush=True)
    rule = FlagRule()
    rows = [score(run, out, rule) for run in grid if (out / run.name / "audit").exists()]
    for r in rows:
        print(f"{r['run']:48s} flip {r['flip_rate']:.2f} acc {r['test_accuracy']:.2f} clusters {r['clusters']} "
              f"flagged {r['flagged_clusters']} undecided {r['undecided_clusters']} "
              f"P {r['precision']:.2f} R {r['recall']:.2f}")
    summary = acceptance(rows)
    print(json.dumps(summary, indent=1))
    numbers = {"grid": args.grid, "rule_version": RULE_VERSION, "rule": asdict(rule), "acceptance": summary,
               "runs": rows}
    default = "audit_calibration-quick" if args.quick else f"audit_calibration_{args.grid}"
    path = Path(args.result) if args.result else ROOT / "benchmarks" / "results" / f"{default}.json"
    write_result("audit_calibration", numbers, seed=grid[0].seed, path=path, origin=origin)
    return 0 if summary["passed"] or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
