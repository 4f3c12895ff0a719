"""GroupINN acceptance (issue 14, item 3): accuracy, recovered groups, driving connections.

Run from the repository root::

    python benchmarks/groupinn.py [--train 60] [--test 200] [--epochs 600] [--cohesion 1.0] [--seeds 0 1 2] [--report out.html]

Simulated fMRI (90 regions, 5 planted groups, 150 time points, subject-level jitter); class 1
couples groups 0-1 (+0.5), anti-couples groups 2-3 (-0.4) and tightens group 4. For each seed:
GroupINN's and an L2 logistic regression's (on the 4005 upper-triangle entries, penalty by 5-fold CV)
test accuracy, the adjusted Rand index of GroupINN's groups against the planted ones (with the
cohesion term and with the paper's losses only), and the assignment's constraints. A few minutes on
one thread. Stores the numbers through ``_runner.write_result`` (``benchmarks/results/groupinn.json``).
"""

from __future__ import annotations

import argparse
import time
import warnings

from _runner import options, provenance, quick_name, quick_option, write_result

#: The quick configuration: one seed, fewer test subjects and epochs.
QUICK = {"test": 100, "epochs": 150, "seeds": [0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options(parser, "groupinn", seed=None)
    parser.add_argument("--train", type=int, default=60)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=600)
    parser.add_argument("--cohesion", type=float, default=1.0)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--report", help="also write the report section (first seed) to this HTML file")
    quick_option(parser, QUICK)
    args = parser.parse_args()
    result_name = quick_name(args, "groupinn", QUICK)
    warnings.filterwarnings("ignore", category=FutureWarning)

    from medlens.app.systems import run_groupinn
    from medlens.core.threads import torch_threads

    rows = []
    with torch_threads(args.threads):
        origin = provenance(seed=args.seeds[0], config=vars(args))
    per_seed = {}
    for seed in args.seeds:
        start = time.perf_counter()
        with torch_threads(args.threads):
            r = run_groupinn(n_train=args.train, n_test=args.test, epochs=args.epochs,
                             cohesion_weight=args.cohesion, seed=seed)
        rows.append(r)
        print(f"seed {seed}: GroupINN accuracy {r.accuracy:.3f}, logistic regression {r.baseline_accuracy:.3f} "
              f"(C={r.baseline_C:.3g}); ARI {r.ari:.3f} (paper's losses only: ARI {r.ari_without_cohesion:.3f}, "
              f"accuracy {r.accuracy_without_cohesion:.3f}); ||W^T W - I||_F {r.orthogonality:.3f}, "
              f"min W {r.min_assignment:.1e}; {time.perf_counter() - start:.0f} s", flush=True)
        per_seed[str(seed)] = {k: float(getattr(r, k)) for k in (
            "accuracy", "baseline_accuracy", "baseline_C", "ari", "ari_without_cohesion", "accuracy_without_cohesion",
            "orthogonality", "min_assignment")} | {"seconds": time.perf_counter() - start}
        if seed == args.seeds[0]:
            print("  relevance of the positive grouped graph (planted-group order):")
            for row in r.relevance[0]:
                print("   " + " ".join(f"{float(v):+7.3f}" for v in row))
            print("  relevance of the negative grouped graph:")
            for row in r.relevance[1]:
                print("   " + " ".join(f"{float(v):+7.3f}" for v in row))
            print("  planted class-1 minus class-0 block connectivity:")
            for row in r.planted_difference:
                print("   " + " ".join(f"{float(v):+7.3f}" for v in row))
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    print(f"mean over {len(rows)} seeds: GroupINN {mean([r.accuracy for r in rows]):.3f}, logistic regression "
          f"{mean([r.baseline_accuracy for r in rows]):.3f}, ARI {mean([r.ari for r in rows]):.3f} "
          f"(paper's losses only {mean([r.ari_without_cohesion for r in rows]):.3f})")
    numbers = {"seeds": per_seed, "relevance_first_seed": {"positive": rows[0].relevance[0], "negative": rows[0].relevance[1]},
               "planted_difference": rows[0].planted_difference,
               "mean": {k: mean([r[k] for r in per_seed.values()]) for k in ("accuracy", "baseline_accuracy", "ari",
                                                                            "ari_without_cohesion")}}
    print(f"stored {write_result(result_name, numbers, seed=args.seeds[0], config=vars(args), path=args.out, origin=origin)}")
    if args.report:
        from medlens.report.html import Report
        from medlens.report.systems import groupinn_section

        report = Report("medlens: GroupINN")
        groupinn_section(report, rows[0])
        print(f"wrote {report.write(args.report)}")


if __name__ == "__main__":
    main()
