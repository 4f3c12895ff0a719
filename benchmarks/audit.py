"""Acceptance and speed of the cohort audit (``medlens audit``).

    python benchmarks/audit.py --out audit-bench [--n-throughput 64] [--skip-ray]
    python benchmarks/audit.py --out audit-bench --only acceptance --epochs 6   # an undertrained model
    python benchmarks/audit.py --quick                # results/audit_acceptance-quick.json (about a minute)

1. **Shortcut acceptance.** Writes the 2D lesion benchmark and its shortcut variant (64x64,
   800 training images, 200 test images, seed 0), trains the reference CNN on each
   (``medlens train``, 15 epochs or ``--epochs``), audits the test split with ``medlens audit``
   (default methods) and checks: on the shortcut variant, the flagged cases of the "lesion"
   class coincide with the test images that carry the marker (precision and recall >= 0.8,
   among the images predicted "lesion"); on the clean benchmark no cluster is flagged. The
   numbers go through ``_runner.write_result`` to ``benchmarks/results/audit_acceptance_e{epochs}.json``
   (or ``--result FILE``). With ``--epochs 6`` the shortcut model is undertrained: the check
   there is that the audit does not flag every case. ``--quick`` (``QUICK``: fewer
   images and epochs, in a temporary folder) is the configuration the benchmark check re-runs
   against ``results/audit_acceptance-quick.json``.
2. **Throughput.** Cases per second of the audit on the local engine and on Ray with 1 and 2
   workers, and the cost of the same explanations and metrics called directly, batch by batch
   (the audit's overhead over the work it runs), and of ``explain`` called for one case at a
   time.
3. **Cohort analysis at scale.** SpRAy over 10,000 synthetic map summaries (two classes, planted
   strategies), timed, with the adjusted Rand index against the planted strategies.

Every step reuses what a previous run left in ``--out`` (data, models, audits resume). Run with
``OMP_NUM_THREADS=1`` on a shared machine.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from _runner import provenance, write_result

#: The acceptance data (``make_lesion_benchmark`` options) and the quick configuration (about a
#: minute at one thread; it checks that the numbers reproduce, not the acceptance: 600 images x 4
#: epochs left both models at chance, which checks nothing).
DATA = {"size": 64, "n_train": 800, "n_val": 100, "n_test": 200}
QUICK = {"size": 64, "n_train": 800, "n_val": 40, "n_test": 60, "epochs": 6}


def _cli(args: list[str]) -> None:
    from medlens.cli import main

    print("$ medlens " + " ".join(args), flush=True)
    code = main(args)
    if code:
        raise SystemExit(f"medlens {args[0]} failed with exit code {code}")


def _test_accuracy(model_file: Path) -> float | None:
    """The test accuracy ``medlens train`` stored in the model file."""
    from medlens.models import load_model

    return (load_model(model_file)[1].get("test") or {}).get("accuracy")


def acceptance(out: Path, seed: int, epochs: int = 15, data_options: dict | None = None) -> dict:
    from medlens.data.synthetic.lesions import write_lesion_benchmark

    data_options = data_options or DATA
    numbers = {"data": dict(data_options), "epochs": epochs}
    for name, shortcut in (("lesions-shortcut", True), ("lesions", False)):
        data = out / f"{name}.npz"
        if not data.exists():
            write_lesion_benchmark(data, **data_options, seed=seed, shortcut=shortcut)
        suffix = "" if epochs == 15 else f"-e{epochs}"
        model = out / f"{name}-cnn{suffix}.pt"
        if not model.exists():
            _cli(["train", "--data", str(data), "--epochs", str(epochs), "--seed", str(seed), "--out", str(model), "--quiet"])
        audit_dir = out / f"audit-{name}{suffix}"
        start = time.perf_counter()
        _cli(["audit", "--model", str(model), "--data", str(data), "--out", str(audit_dir), "--quiet"])
        seconds = time.perf_counter() - start
        with np.load(data) as z:
            markers = z["test_marker_masks"].reshape(len(z["test_labels"]), -1).any(1)
        rows = list(csv.DictReader((audit_dir / "clusters.csv").open()))
        lesion = [r for r in rows if r["class"] == "1"]
        flagged = {int(r["case"]) for r in lesion if r["flagged"] == "1"}
        marked = {int(r["case"]) for r in lesion if markers[int(r["case"])]}
        tp = len(flagged & marked)
        flagged_any = {int(r["case"]) for r in rows if r["flagged"] == "1"}
        marked_any = {int(r["case"]) for r in rows if markers[int(r["case"])]}
        entry = {
            "cases": len(rows),
            "predicted_lesion": len(lesion),
            "marked_among_predicted_lesion": len(marked),
            "marked_in_test": int(markers.sum()),
            "flagged_lesion": len(flagged),
            "flagged_all_classes": sum(r["flagged"] == "1" for r in rows),
            "flagged_clusters": len({(r["class"], r["cluster"]) for r in rows if r["flagged"] == "1"}),
            "clusters": len({(r["class"], r["cluster"]) for r in rows}),
            "test_accuracy": _test_accuracy(model),
            "precision": tp / len(flagged) if flagged else float("nan"),
            "recall": tp / len(marked) if marked else float("nan"),
            "recall_all_marked": tp / int(markers.sum()) if markers.any() else float("nan"),
            # every class: do the flagged strategies of any class coincide with the marked images?
            "precision_all_classes": len(flagged_any & marked_any) / len(flagged_any) if flagged_any else float("nan"),
            "recall_all_classes": len(flagged_any & marked_any) / len(marked_any) if marked_any else float("nan"),
            "seconds": seconds,
        }
        numbers[name] = entry
        print(json.dumps({name: entry}, indent=1), flush=True)
    sc, clean = numbers["lesions-shortcut"], numbers["lesions"]
    ok = sc["precision"] >= 0.8 and sc["recall"] >= 0.8 and clean["flagged_clusters"] == 0
    numbers["passed"] = ok
    numbers["every_case_flagged"] = sc["flagged_all_classes"] == sc["cases"]
    print(f"shortcut: precision {sc['precision']:.3f}, recall {sc['recall']:.3f} (>= 0.8); "
          f"clean: {clean['flagged_clusters']} flagged cluster(s) (0)  ->  {'PASSED' if ok else 'FAILED'}", flush=True)
    return numbers


def throughput(out: Path, n: int, skip_ray: bool) -> dict:
    from medlens.attribution.explain import explain
    from medlens.audit.cases import AuditSettings
    from medlens.audit.run import plan_batches, run_audit
    from medlens.audit.sources import SourceSpec, open_source
    from medlens.core.checks import model_outputs
    from medlens.core.engine import Budget
    from medlens.core.targets import to_target
    from medlens.evaluation.maps import saliency_map
    from medlens.evaluation.registry import EvalBatch, get_metric
    from medlens.models import load_model

    model, meta = load_model(out / "lesions-shortcut-cnn.pt")
    spec = SourceSpec(str(out / "lesions-shortcut.npz"), "test", tuple(meta["input_shape"]))
    settings = AuditSettings()
    rows = {}

    # the same work called directly, batch by batch: explanations, metrics, maps
    source = open_source(spec)
    budget = Budget(batch_size=settings.batch_size)
    start = time.perf_counter()
    for indices in plan_batches(n, settings.cases_per_batch, set()):
        batch = source.load(indices)
        with torch.inference_mode():
            outputs = model_outputs(model.eval(), batch.x, budget)
        predicted = outputs.argmax(1)
        tgt = to_target(predicted, outputs)
        for method in settings.all_methods:
            att = explain(model, batch.x, predicted, method, batch_size=settings.batch_size,
                          **settings.options_for(method))
            eb = EvalBatch(model, batch.x, tgt, att.values, None, torch.tensor(indices), masks=batch.masks, budget=budget)
            for metric in settings.metrics:
                get_metric(metric).fn(eb)
            saliency_map(att.values, batch.x.shape[2:], abs=True)
    direct = time.perf_counter() - start
    rows["direct calls (same batches)"] = n / direct

    # explain alone, one case at a time (the single-case cost a user pays with `medlens explain`)
    start = time.perf_counter()
    for i in range(n):
        x = source.load([i]).x
        for method in settings.all_methods:
            explain(model, x, None, method, **settings.options_for(method))
    single = time.perf_counter() - start
    rows["explain only, one case at a time"] = n / single

    engines = [("local", None)] + ([] if skip_ray else [("ray", 1), ("ray", 2)])
    for engine, workers in engines:
        target = out / f"throughput-{engine}-{workers or 0}"
        run = run_audit(model, spec, target, settings, meta=meta, engine=engine, workers=workers, restart=True, limit=n)
        rows[f"audit, {engine} engine" + (f", {workers} worker(s)" if workers else "")] = run.cases_per_second
    print(f"\n{'':42s} {'cases/s':>8s} {'s/case':>8s} {'vs direct':>10s} {'vs explain-only':>16s}")
    for name, rate in rows.items():
        print(f"{name:42s} {rate:8.3f} {1 / rate:8.3f} {rows['direct calls (same batches)'] / rate:10.3f} "
              f"{rows['explain only, one case at a time'] / rate:16.3f}")
    overhead = rows["direct calls (same batches)"] / rows["audit, local engine"] - 1
    print(f"audit overhead over the explanations and metrics it runs (local engine): {overhead:+.1%} (criterion <= +15%)")
    return {"cases": n, "cases_per_second": rows, "overhead_local": overhead}


def cohort_analysis(n: int = 10_000, seed: int = 0) -> dict:
    """SpRAy over ``n`` synthetic summaries: two classes, three planted strategies each."""
    from medlens.audit.cases import AuditSettings, CaseResult
    from medlens.audit.spray import adjusted_rand_index
    from medlens.audit.strategies import FlagRule, find_strategies
    from medlens.audit.summary import summarise_maps

    gen = torch.Generator().manual_seed(seed)
    size, grid = 32, (8, 8)
    yy, xx = torch.meshgrid(torch.arange(size, dtype=torch.float64), torch.arange(size, dtype=torch.float64), indexing="ij")
    centres = {0: [(9, 9), (9, 22), (22, 16)], 1: [(16, 16), (22, 9), (2, 2)]}  # (2, 2): a corner "tag"
    results, planted = [], []
    settings = AuditSettings(methods=("gradient",), cluster_method="gradient", metrics=())
    interior = torch.zeros(grid)
    interior[1:-1, 1:-1] = 1
    for i in range(n):
        cls = i % 2
        k = int(torch.randint(3, (), generator=gen))
        cy, cx = centres[cls][k]
        j = (torch.rand(2, generator=gen, dtype=torch.float64) - 0.5) * 2
        m = torch.exp(-((yy - cy - j[0]) ** 2 + (xx - cx - j[1]) ** 2) / 18) + 0.2 * torch.rand(size, size, generator=gen, dtype=torch.float64)
        s = summarise_maps(m[None], grid)
        results.append(CaseResult(i, str(i), cls, cls, (0.5, 0.5), {"gradient.misplaced": float("nan")}, s, interior.reshape(-1)))
        planted.append(cls * 3 + k)
    def removal(cells, positions):  # known answer: only the corner strategy depends on the corner cell
        draws = 1 + FlagRule().n_draws
        rows = [[(0.4 if planted[p] == 5 and 0 in cells else 0.0) + 0.01 * ((p * 7 + j * 3) % 5 - 2)
                 if j == 0 else 0.01 * ((p * 7 + j * 3) % 5 - 2) for j in range(draws)] for p in positions]
        return torch.tensor(rows, dtype=torch.float64)

    start = time.perf_counter()
    strategies = find_strategies(results, settings, grid, removal=removal)
    seconds = time.perf_counter() - start
    found = torch.empty(n, dtype=torch.long)
    for cs in strategies.classes:
        for c in cs.clusters:
            found[c.members] = cs.predicted_class * 100 + c.cluster
    ari = adjusted_rand_index(found, torch.tensor(planted))
    flagged = [(c.predicted_class, c.cluster, c.size) for c in strategies.flagged()]
    corner = [i for i in range(n) if planted[i] == 5]
    flagged_members = set(strategies.flagged_cases())
    print(f"\nSpRAy on {n} synthetic summaries: {seconds:.1f} s (criterion < 60 s); clusters per class "
          f"{[cs.clustering.n_clusters for cs in strategies.classes]}; ARI against the planted strategies {ari:.3f}; "
          f"flagged {flagged}; flagged = corner strategy: {flagged_members == set(corner)}")
    return {"n": n, "seconds": seconds, "ari": ari, "flagged": flagged, "flagged_is_corner": flagged_members == set(corner)}


def volumes(out: Path, n: int = 16) -> dict:
    """Per-worker throughput on 3D volumes (32^3, the 3D reference CNN, default audit settings)."""
    from medlens.app.recipes import BUILDERS
    from medlens.audit.cases import AuditSettings
    from medlens.audit.run import run_audit
    from medlens.audit.sources import SourceSpec
    from medlens.data import load_dataset
    from medlens.data.synthetic.lesions import write_lesion_benchmark

    data = out / "lesions-3d.npz"
    if not data.exists():
        write_lesion_benchmark(data, spatial_dims=3, size=32, n_train=2, n_val=2, n_test=n, seed=0)
    test = load_dataset(str(data), "test")
    torch.manual_seed(0)
    model = BUILDERS["cnn"](test.inputs, 2).eval()  # untrained: the cost does not depend on the weights
    run = run_audit(model, SourceSpec(str(data), "test", tuple(test.inputs.shape[1:])), out / "throughput-3d",
                    AuditSettings(), restart=True)
    print(f"\n3D volumes 32^3, 3D reference CNN, default settings: {run.cases_per_second:.3f} cases/s "
          f"({1 / run.cases_per_second:.2f} s per volume) on one worker (one thread)")
    return {"cases": n, "cases_per_second": run.cases_per_second}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=None, help="the working folder (data, models, audits; default audit-bench, "
                        "with --quick a temporary folder)")
    parser.add_argument("--result", default=None,
                        help="where to store the acceptance numbers (default benchmarks/results/audit_acceptance_eN.json)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    parser.add_argument("--quick", action="store_true", help=f"the acceptance at the quick configuration {QUICK}")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-throughput", type=int, default=64)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--only", choices=("acceptance", "throughput", "analysis", "volumes"), default=None)
    parser.add_argument("--epochs", type=int, default=15, help="training epochs of the acceptance models")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.quick:
        args.only, args.epochs = "acceptance", QUICK["epochs"]
        with tempfile.TemporaryDirectory() as tmp:
            return _acceptance(Path(args.out or tmp), args, {k: v for k, v in QUICK.items() if k != "epochs"},
                               "audit_acceptance-quick")
    out = Path(args.out or "audit-bench")
    out.mkdir(parents=True, exist_ok=True)
    numbers = {}
    if args.only == "acceptance":
        return _acceptance(out, args, DATA, f"audit_acceptance_e{args.epochs}")
    if args.only is None:
        numbers["acceptance"] = acceptance(out, args.seed, args.epochs)
        write_result(f"audit_acceptance_e{args.epochs}", numbers["acceptance"], seed=args.seed, config=vars(args),
                     path=args.result)
    if args.only in (None, "analysis"):
        numbers["analysis"] = cohort_analysis()
    if args.only in (None, "throughput"):
        numbers["throughput"] = throughput(out, args.n_throughput, args.skip_ray)
    if args.only in (None, "volumes"):
        numbers["volumes"] = volumes(out)
    write_result(f"audit_{args.only or 'all'}", numbers, seed=args.seed, config=vars(args),
                 path=out / f"numbers-{args.only or 'all'}.json")
    return 0 if numbers.get("acceptance", {}).get("passed", True) else 1


def _acceptance(out: Path, args: argparse.Namespace, data_options: dict, name: str) -> int:
    """The acceptance alone, stored through ``write_result`` as ``name`` (or ``--result``)."""
    out.mkdir(parents=True, exist_ok=True)
    origin = provenance(seed=args.seed, config=vars(args))  # the tree as the run starts
    numbers = acceptance(out, args.seed, args.epochs, data_options)
    print(f"stored {write_result(name, numbers, seed=args.seed, config=vars(args), path=args.result, origin=origin)}")
    return 0 if numbers["passed"] or args.quick else 1


if __name__ == "__main__":
    sys.exit(main())
