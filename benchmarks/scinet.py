"""SciNet acceptance (issue 14, item 2): latent neurons against the oscillator's parameters.

Run from the repository root::

    python benchmarks/scinet.py [--epochs 120] [--beta 1e-3] [--latent 3] [--seed 0] [--report out.html]

SciNet (encoder, 3 latent neurons with a beta-VAE penalty, question-conditioned decoder) is trained
on 20000 simulated damped oscillators (spring constant kappa in [5, 10], damping b in [0.5, 1],
50 observed positions over 5 s, question: a time in [0, 10] s) and measured on 2000 held-out ones:
the absolute correlation of each parameter with its best latent neuron (acceptance: >= 0.95), the KL
of each neuron's posterior from the prior (switched off: near 0), and the answer RMSE. About a
minute on one thread.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=120)
    parser.add_argument("--beta", type=float, default=1e-3)
    parser.add_argument("--latent", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report", help="also write the report section to this HTML file")
    args = parser.parse_args()

    from medlens.app.systems import run_scinet
    from medlens.core.threads import torch_threads

    start = time.perf_counter()
    with torch_threads(1):
        r = run_scinet(epochs=args.epochs, beta=args.beta, latent=args.latent, seed=args.seed)
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
    if args.report:
        from medlens.report.html import Report
        from medlens.report.systems import scinet_section

        report = Report("medlens: SciNet")
        scinet_section(report, r)
        print(f"wrote {report.write(args.report)}")


if __name__ == "__main__":
    main()
