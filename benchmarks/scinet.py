"""SciNet acceptance (issue 14, item 2): latent neurons against the oscillator's parameters.

Run from the repository root::

    python benchmarks/scinet.py [--epochs 120] [--beta 1e-3] [--latent 3] [--seed 0] [--report out.html]

SciNet (encoder, 3 latent neurons with a beta-VAE penalty, question-conditioned decoder) is trained
on 20000 simulated damped oscillators (spring constant kappa in [5, 10], damping b in [0.5, 1],
50 observed positions over 5 s, question: a time in [0, 10] s) and measured on 2000 held-out ones:
the absolute correlation of each parameter with its best latent neuron (acceptance: >= 0.95), the KL
of each neuron's posterior from the prior (switched off: near 0), and the answer RMSE. About a
minute on one thread. Stores the numbers through ``_runner.write_result``
(``benchmarks/results/scinet.json``); ``--quick`` (``QUICK``) is the configuration the slow test
re-runs against ``results/scinet-quick.json``.
"""

from __future__ import annotations

import argparse
import time

from _runner import options, provenance, write_result

#: The quick configuration (seconds): fewer oscillators and epochs.
QUICK = {"epochs": 40, "n_train": 8000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options(parser, "scinet")
    parser.add_argument("--epochs", type=int, default=120)
    parser.add_argument("--n-train", type=int, default=20000)
    parser.add_argument("--beta", type=float, default=1e-3)
    parser.add_argument("--latent", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help=f"the quick configuration {QUICK}")
    parser.add_argument("--report", help="also write the report section to this HTML file")
    args = parser.parse_args()
    if args.quick:
        vars(args).update(QUICK)

    from medlens.app.systems import run_scinet
    from medlens.core.threads import torch_threads

    start = time.perf_counter()
    with torch_threads(args.threads):
        origin = provenance(seed=args.seed, config=vars(args))
        r = run_scinet(n_train=args.n_train, epochs=args.epochs, beta=args.beta, latent=args.latent, seed=args.seed)
    a = r.analysis
    print(f"SciNet: {args.latent} latent neurons, beta {args.beta}, {args.epochs} epochs, seed {args.seed}, "
          f"{time.perf_counter() - start:.0f} s")
    for name, j, c in zip(a.parameter_names, a.best_neuron, a.best_correlation):
        print(f"{name:24s} best neuron {int(j)}  |r| = {float(c):.4f}  {'captured' if float(c) >= 0.95 else 'NOT captured'}")
    print("KL per neuron (nats): " + ", ".join(f"{float(k):.4f}" for k in a.kl)
          + f"; active: {int(a.active.sum())} of {a.kl.numel()}")
    print("|r| matrix (parameters x neurons):")
    for name, row in zip(a.parameter_names, a.correlation):
        print(f"  {name:24s} " + " ".join(f"{float(v):.3f}" for v in row))
    print(f"held-out answer RMSE {a.answer_rmse:.4f} (answers' SD {a.answer_std:.4f})")
    numbers = {"parameters": {name: {"best_neuron": int(j), "abs_correlation": float(c)}
                              for name, j, c in zip(a.parameter_names, a.best_neuron, a.best_correlation)},
               "abs_correlation": a.correlation, "kl_per_neuron": a.kl, "active_neurons": int(a.active.sum()),
               "answer_rmse": float(a.answer_rmse), "answer_std": float(a.answer_std),
               "captured": bool(all(float(c) >= 0.95 for c in a.best_correlation)),
               "seconds": time.perf_counter() - start}
    name = "scinet" + ("-quick" if args.quick else "")
    print(f"stored {write_result(name, numbers, seed=args.seed, config=vars(args), path=args.out, origin=origin)}")
    if args.report:
        from medlens.report.html import Report
        from medlens.report.systems import scinet_section

        report = Report("medlens: SciNet")
        scinet_section(report, r)
        print(f"wrote {report.write(args.report)}")


if __name__ == "__main__":
    main()
