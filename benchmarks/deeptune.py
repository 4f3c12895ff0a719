"""DeepTune acceptance (issue 14, item 1): prediction accuracy and DeepTune images of simulated neurons.

Run from the repository root::

    python benchmarks/deeptune.py [--members 4] [--stimuli 3000] [--steps 192] [--seed 0] [--report out.html]

Six simulated neurons (four Gabor-energy complex cells, two centre-surround units, with known
orientation, period, position and size) are recorded on 3000 stimuli (half bundled PneumoniaMNIST
scans, half textures) with noise of 0.3 times each response's SD. An ensemble of small CNNs trained
on PneumoniaMNIST (different seeds) gives first-block features; a ridge regression per neuron and
member is fitted on 80% of the stimuli. Printed per neuron: held-out correlation of each member and
of the consensus (noise ceiling 1/sqrt(1 + 0.3^2) = 0.958); normalised cross-correlation at the
best shift (+-3 px) of each DeepTune image with the true preferred stimulus; and, for chance, the
NCC of the images rendered for the other neurons. One thread; a few minutes on a shared CPU. Stores
the numbers through ``_runner.write_result`` (``benchmarks/results/deeptune.json``).
"""

from __future__ import annotations

import argparse
import time

from _runner import options, provenance, quick_name, quick_option, write_result

#: The quick configuration: two members, fewer stimuli and steps.
QUICK = {"members": 2, "stimuli": 600, "steps": 32}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options(parser, "deeptune")
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--stimuli", type=int, default=3000)
    parser.add_argument("--steps", type=int, default=192)
    parser.add_argument("--report", help="also write the report section to this HTML file")
    quick_option(parser, QUICK)
    args = parser.parse_args()
    result_name = quick_name(args, "deeptune", QUICK)

    from medlens.app.systems import run_deeptune
    from medlens.core.threads import torch_threads

    start = time.perf_counter()
    with torch_threads(args.threads):
        origin = provenance(seed=args.seed, config=vars(args))
        r = run_deeptune(n_members=args.members, n_stimuli=args.stimuli, steps=args.steps, seed=args.seed)
    print(f"DeepTune: {args.members} members, {args.stimuli} stimuli, {args.steps} steps, seed {args.seed}, "
          f"{time.perf_counter() - start:.0f} s")
    print(f"noise ceiling of the correlation: {r.noise_ceiling:.3f}")
    head = f"{'neuron':58s} {'r members':>22s} {'r cons':>7s} {'NCC members':>24s} {'NCC cons':>8s} {'chance':>7s}"
    print(head)
    for k, name in enumerate(r.neuron_names):
        rm = " ".join(f"{float(v):.2f}" for v in r.member_correlation[:, k])
        sm = " ".join(f"{float(v):.2f}" for v in r.member_similarity[:, k])
        print(f"{name:58s} {rm:>22s} {float(r.consensus_correlation[k]):7.3f} {sm:>24s} "
              f"{float(r.consensus_similarity[k]):8.3f} {float(r.chance_similarity[k]):7.3f}")
    ms = r.member_similarity
    print(f"mean held-out r: members {float(r.member_correlation.mean()):.3f}, consensus {float(r.consensus_correlation.mean()):.3f}")
    print(f"mean NCC: members {float(ms.mean()):.3f}, best member per neuron {float(ms.max(0).values.mean()):.3f}, "
          f"consensus {float(r.consensus_similarity.mean()):.3f}, other neurons' images {float(r.chance_similarity.mean()):.3f}")
    print(f"consensus beats the members' mean NCC on {int((r.consensus_similarity > ms.mean(0)).sum())} of "
          f"{len(r.neuron_names)} neurons, every member on {int((r.consensus_similarity > ms.max(0).values).sum())}")
    numbers = {"noise_ceiling": float(r.noise_ceiling),
               "neurons": {name: {"r_members": r.member_correlation[:, k], "r_consensus": float(r.consensus_correlation[k]),
                                  "ncc_members": ms[:, k], "ncc_consensus": float(r.consensus_similarity[k]),
                                  "ncc_other_neurons": float(r.chance_similarity[k])}
                           for k, name in enumerate(r.neuron_names)},
               "mean_r_members": float(r.member_correlation.mean()), "mean_r_consensus": float(r.consensus_correlation.mean()),
               "mean_ncc_members": float(ms.mean()), "mean_ncc_best_member": float(ms.max(0).values.mean()),
               "mean_ncc_consensus": float(r.consensus_similarity.mean()),
               "mean_ncc_other_neurons": float(r.chance_similarity.mean()),
               "seconds": time.perf_counter() - start}
    print(f"stored {write_result(result_name, numbers, seed=args.seed, config=vars(args), path=args.out, origin=origin)}")
    if args.report:
        from medlens.report.html import Report
        from medlens.report.systems import deeptune_section

        report = Report("medlens: DeepTune")
        deeptune_section(report, r)
        print(f"wrote {report.write(args.report)}")


if __name__ == "__main__":
    main()
