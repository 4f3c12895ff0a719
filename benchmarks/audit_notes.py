"""The text audit's token test on radiology-style reports with and without a de-identification shortcut.

    OMP_NUM_THREADS=1 python benchmarks/audit_notes.py [--seeds 0 1 2] [--n-train 600] [--n-audit 200] \
        [--epochs 8] [--out benchmarks/results/audit_notes.json]

The reports are :func:`medlens.data.synthetic.reports_text.make_reports` (five to eight chest
radiograph sentences; "pneumonia" reports affirm one finding, half of the others mention the
finding words negated, both classes share distractor findings and boilerplate), written as a
notes file. A de-identification placeholder ``XXXX`` (read as the token ``xxxx``) is put between
two sentences of some reports, in training and in the audited notes alike:

* ``shortcut``: the labels of a random 20% of the reports are flipped, and every report labelled
  "pneumonia" (after the flip) holds the placeholder, no other does: the placeholder is the one
  word that tells every label, the findings tell 80% (a site or template that marks one class,
  more reliable than the evidence; a model that fits its training notes must read it);
* ``redundant``: in 90% of the "pneumonia" reports and 10% of the others, labels as generated
  (the placeholder is a shortcut the data offer, but the findings tell every label);
* ``clean``: in a random half of the reports of either class (it tells nothing).

Per seed and scenario, what a user runs: ``medlens train`` on the training notes, ``medlens
audit --tokens xxxx`` on fresh audited notes (drawn with another seed). Recorded: the model's
accuracy on the audited notes, the token test of ``xxxx`` in each predicted class (verdict,
change against null, Holm-corrected p), the verdicts of the finding words
(:data:`~medlens.data.synthetic.reports_text.RATIONALE_WORDS`) in the "pneumonia" class, how many
tokens were found depended on, and the audit's seconds per note. Nothing here is tuned to the
outcome: the rule is the image audit's (``medlens.audit.tokens.TokenRule`` defaults).
"""

from __future__ import annotations

import argparse
import csv
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the medlens of this checkout

import torch

from benchmarks._runner import provenance, quick_name, quick_option, write_result
from medlens.core.random import generator
from medlens.data.synthetic.reports_text import (
    CLASS_NAMES,
    RATIONALE_WORDS,
    decode,
    make_reports,
)

#: share of the reports with XXXX (labelled pneumonia, other) and share of the labels flipped
SCENARIOS = {"shortcut": (1.0, 0.0, 0.2), "redundant": (0.9, 0.1, 0.0), "clean": (0.5, 0.5, 0.0)}

#: The quick configuration: one seed, fewer notes (200 notes x 3 epochs left the models at chance).
QUICK = {"seeds": [0], "n_train": 400, "n_audit": 60, "epochs": 8}


def write_notes(path: Path, n: int, seed: int, scenario: str) -> None:
    """``n`` reports as a notes file (case, text, label), the placeholder put in as ``scenario`` says."""
    data = make_reports(n, seed=seed)
    gen = generator(seed, "placeholder", scenario)
    *share, flip = SCENARIOS[scenario]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["case", "text", "label"])
        for i in range(n):
            label = int(data.labels[i])
            if float(torch.rand((), generator=gen)) < flip:
                label = 1 - label
            sentences = " ".join(decode(data.inputs[i])).split(" . ")
            if float(torch.rand((), generator=gen)) < share[1 - label]:
                at = int(torch.randint(len(sentences) + 1, (1,), generator=gen))
                sentences.insert(at, "XXXX")
            w.writerow([f"r{i:04d}", " . ".join(sentences).rstrip(" .") + " .", CLASS_NAMES[label]])


def run_one(seed: int, scenario: str, args: argparse.Namespace, folder: Path) -> dict:
    from medlens.app.audit import AuditRequest, audit_cohort
    from medlens.app.train import TrainRequest, train_model

    train, audited = folder / f"{scenario}{seed}_train.csv", folder / f"{scenario}{seed}_audit.csv"
    write_notes(train, args.n_train, seed, scenario)
    write_notes(audited, args.n_audit, 1000 + seed, scenario)
    model = folder / f"{scenario}{seed}.pt"
    train_model(TrainRequest(data=str(train), out=str(model), epochs=args.epochs, max_length=64, seed=seed, quiet=True))
    started = time.perf_counter()
    outcome = audit_cohort(AuditRequest(model=str(model), data=str(audited), out=str(folder / f"{scenario}{seed}_audit"),
                                        tokens=("xxxx",), seed=seed, quiet=True))
    seconds = time.perf_counter() - started
    analysis = outcome.analysis
    names = list(analysis.info["class_names"])
    labelled = [r for r in analysis.results if r.label is not None]
    placeholder = {}
    finding = {}
    for cs in analysis.strategies.classes:
        for t in cs.tokens:
            if t.token == "xxxx":
                placeholder[names[cs.predicted_class]] = {
                    "verdict": t.verdict, "notes": t.notes, "n_tested": t.n_tested, "change": t.change,
                    "null_change": t.null_change, "p_value": t.p_value, "rank": t.rank}
            if names[cs.predicted_class] == "pneumonia" and t.token in RATIONALE_WORDS and t.tested:
                finding[t.token] = t.verdict
    return {
        "seed": seed, "scenario": scenario,
        "accuracy": sum(r.label == r.predicted for r in labelled) / len(labelled),
        "xxxx": placeholder,
        "finding_words_tested": finding,
        "depended_on": [f"{names[t.predicted_class]}:{t.token}" for t in analysis.strategies.depended()],
        "small_effect": [f"{names[t.predicted_class]}:{t.token}" for t in analysis.strategies.tested()
                         if t.verdict == "small effect"],
        "seconds_per_note": seconds / len(analysis.results),
    }


def summarise(runs: list[dict]) -> dict:
    out = {}
    for scenario in SCENARIOS:
        rows = [r for r in runs if r["scenario"] == scenario]
        pneumonia = [r["xxxx"].get("pneumonia", {}).get("verdict", "absent") for r in rows]
        anywhere = [any(v.get("verdict") == "depended on" for v in r["xxxx"].values()) for r in rows]
        out[scenario] = {
            "runs": len(rows),
            "xxxx_depended_on_in_pneumonia": sum(v == "depended on" for v in pneumonia),
            "xxxx_verdicts_in_pneumonia": pneumonia,
            "xxxx_depended_on_in_any_class": sum(anywhere),
            "mean_accuracy": sum(r["accuracy"] for r in rows) / len(rows),
            "mean_seconds_per_note": sum(r["seconds_per_note"] for r in rows) / len(rows),
        }
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--n-train", type=int, default=600)
    parser.add_argument("--n-audit", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--out", default=None)
    parser.add_argument("--threads", type=int, default=1)
    quick_option(parser, QUICK)
    args = parser.parse_args()
    result_name = quick_name(args, "audit_notes", QUICK)
    torch.set_num_threads(args.threads)
    config = {k: v for k, v in vars(args).items() if k != "out"}
    origin = provenance(seed=args.seeds[0], config=config)
    t0 = time.perf_counter()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for scenario in SCENARIOS:
                runs.append(run_one(seed, scenario, args, Path(tmp)))
                r = runs[-1]
                print(f"[{time.perf_counter() - t0:5.0f} s] seed {seed} {scenario}: accuracy {r['accuracy']:.3f}; "
                      f"xxxx {({k: v['verdict'] for k, v in r['xxxx'].items()})}; depended on {r['depended_on']}",
                      flush=True)
    numbers = {"summary": summarise(runs), "runs": runs}
    path = write_result(result_name, numbers, seed=args.seeds[0], config=config, path=args.out, origin=origin)
    print(numbers["summary"])
    print(f"stored {path}; total {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
