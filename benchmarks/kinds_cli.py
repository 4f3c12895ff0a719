"""Issue 22 acceptance through the command line, as a new user would run it (real notes, a real ECG record).

    OMP_NUM_THREADS=1 python benchmarks/kinds_cli.py --reports /work/realdata/indiana_reports.csv \
        --record /work/realdata/mitdb/100 [--epochs 8] [--seed 0] [--out benchmarks/results/kinds_cli.json]

Every step is a ``python -m medlens ...`` command (listed in the JSON with its wall time); this
script only writes the input files and reads the output files.

Notes (Indiana University / OpenI chest X-ray reports, normal vs abnormal from the MeSH column):
``notes.csv`` as in ``benchmarks/clinical_text.py`` (text = findings + impression; label normal /
abnormal; group = report uid). ``medlens train --data notes.csv`` (70/15/15 by group; tokenizer
learnt on the training notes); the held-out notes (the model file's ``split_positions["test"]``)
go to ``test_notes.csv``; ``medlens predict`` on them gives the held-out AUROC (its metrics.json);
``medlens explain`` on the positive held-out notes (grad x input, then integrated gradients; each
writes tokens.csv with the method's column and the attention column) gives, for each positive
note whose text names one of its MeSH findings, whether one of its five highest-scoring tokens
names it (finding words as in clinical_text.py: stems of the MeSH heading words), against the
exact chance of five random tokens; ``medlens attention`` runs Jain and Wallace's tests on 120
held-out notes; ``medlens report`` reports one positive note with its similar training notes.

ECG (MIT-BIH record 100): ``medlens train --windows beats`` on the record (N: normal, A: atrial
premature; the model holds out the last 15% of the beats in time as its test stretch);
``medlens predict`` on the record; ``medlens explain --start`` on the atrial premature beat of the
test stretch with the highest probability (``signal.png``: a strip in seconds with the beat labels,
copied to ``benchmarks/results/kinds_cli_beat.png``).

Stores its numbers and every command through ``_runner.write_result`` (``benchmarks/results/kinds_cli.json``).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _runner import ROOT, options, run_and_report
from clinical_text import chance_in_top, corpus_rows, finding_stems, is_finding

COMMANDS: list[dict] = []


def medlens(*args: str) -> str:
    """Run ``python -m medlens ARGS`` from the checkout; returns stdout (fails loudly)."""
    t0 = time.perf_counter()
    cmd = [sys.executable, "-m", "medlens", *args]
    done = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ))
    COMMANDS.append({"command": "medlens " + " ".join(args), "seconds": round(time.perf_counter() - t0, 1),
                     "rc": done.returncode})
    if done.returncode != 0:
        raise SystemExit(f"medlens {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    print(done.stdout.strip(), flush=True)
    return done.stdout


def load_meta(path: Path) -> dict:
    from medlens.models.io import load_model

    return load_model(path)[1]


def write_rows(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["case", "text", "label", "group"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)


def top5_hits(folder: Path, rows: list[dict], column: str) -> tuple[list[bool], list[float], int]:
    """Per positive note naming its finding: hit among the 5 highest ``column`` tokens; and the chance."""
    hits, chance, without = [], [], 0
    for k, row in enumerate(rows):
        with open(folder / f"note-{k + 1}" / "tokens.csv", newline="", encoding="utf-8") as fh:
            toks = list(csv.DictReader(fh))
        stems = finding_stems("abnormal", row["mesh"])
        marked = [i for i, t in enumerate(toks) if is_finding(t["token"], stems)]
        if not marked:
            without += 1
            continue
        order = sorted(range(len(toks)), key=lambda i: -float(toks[i][column]))[:5]
        hits.append(any(i in marked for i in order))
        chance.append(chance_in_top(len(toks), len(marked)))
    return hits, chance, without


def notes_part(args: argparse.Namespace, tmp: Path) -> dict:
    rows = corpus_rows(args.reports, "abnormal")
    notes = tmp / "notes.csv"
    write_rows(notes, rows)
    model = tmp / "notes.pt"
    medlens("train", "--data", str(notes), "--epochs", str(args.epochs), "--seed", str(args.seed), "--out", str(model),
            "--quiet")
    meta = load_meta(model)
    pos = meta["split_positions"]
    test_rows = [rows[i] for i in pos["test"]]
    train_rows = [rows[i] for i in pos["train"]]
    assert not {r["group"] for r in test_rows} & {r["group"] for r in train_rows}
    test_csv, train_csv = tmp / "test_notes.csv", tmp / "train_notes.csv"
    write_rows(test_csv, test_rows)
    write_rows(train_csv, train_rows)
    medlens("predict", "--model", str(model), "--data", str(test_csv), "--out", str(tmp / "predict"), "--quiet")
    metrics = json.loads((tmp / "predict" / "metrics.json").read_text())
    positives = [r for r in test_rows if r["label"] == "abnormal"]
    pos_csv = tmp / "positive_test_notes.csv"
    write_rows(pos_csv, positives)
    top5: dict = {}
    for method in ("grad_x_input", "integrated_gradients"):
        out = tmp / f"explain_{method}"
        medlens("explain", "--model", str(model), "--input", str(pos_csv), "--method", method,
                "--target", str(meta["class_names"].index("abnormal")), "--out", str(out), "--quiet")
        hits, chance, without = top5_hits(out, positives, method)
        top5[method] = sum(hits) / len(hits)
        if method == "grad_x_input":
            att_hits, _c, _w = top5_hits(out, positives, "attention")
            top5["attention"] = sum(att_hits) / len(att_hits)
            top5["random_tokens"] = sum(chance) / len(chance)
            evaluated, no_word = len(hits), without
    medlens("attention", "--model", str(model), "--data", str(test_csv), "--limit", str(args.jw_notes),
            "--permutations", str(args.permutations), "--ig-steps", "16", "--seed", str(args.seed),
            "--out", str(tmp / "attention"))
    jw = json.loads((tmp / "attention" / "attention.json").read_text())
    one = tmp / "one_note.csv"
    write_rows(one, positives[:1])
    medlens("report", "--model", str(model), "--input", str(one), "--basis-data", str(train_csv), "--out",
            str(tmp / "report"), "--quiet")
    report = json.loads((tmp / "report" / "case.json").read_text())
    return {
        "corpus": os.path.basename(args.reports),
        "task": "normal vs abnormal (MeSH 'normal' or not)",
        "n_notes": len(rows),
        "model": {"vocabulary": meta["text"]["vocabulary"], "max_length": meta["text"]["max_length"],
                  "truncation": meta["text"]["truncation"], "cases": meta["cases"], "split": meta["text"]["split"],
                  "val": {k: meta["val"][k] for k in ("accuracy", "auroc")}},
        "held_out_predict_metrics": {k: metrics[k] for k in ("n_labelled", "accuracy", "auroc", "expected_calibration_error",
                                                             "label_counts")},
        "top5_finding_word_hit_rate": {"n_positive_test_notes": len(positives), "n_evaluated": evaluated,
                                       "n_without_finding_word": no_word, "rate": top5},
        "jain_wallace": {"n_notes": args.jw_notes, "verdict": jw["verdict"], "sentences": jw["sentences"],
                         "summary": jw["summary"]},
        "report_one_note": {k: report[k] for k in ("predicted_class", "top_words", "checks", "similar")},
    }


def ecg_part(args: argparse.Namespace, tmp: Path) -> dict:
    folder = tmp / "mitdb"
    folder.mkdir()
    for suffix in (".hea", ".dat", ".atr"):
        shutil.copy(args.record + suffix, folder)
    model = tmp / "beats.pt"
    medlens("train", "--data", str(folder), "--windows", "beats", "--before", "0.25", "--after", "0.45",
            "--annotation-labels", "N:normal,A:atrial premature", "--epochs", str(args.ecg_epochs), "--seed",
            str(args.seed), "--out", str(model), "--quiet")
    meta = load_meta(model)
    medlens("predict", "--model", str(model), "--data", str(folder), "--out", str(tmp / "beats_predict"), "--quiet")
    with open(tmp / "beats_predict" / "predictions.csv", newline="", encoding="utf-8") as fh:
        preds = list(csv.DictReader(fh))
    name = Path(args.record).name
    start = meta["test_from_seconds"][name]
    test_a = [r for r in preds if r["label"] == "atrial premature" and float(r["case"].split("@")[1][:-1]) >= start]
    best = max(test_a, key=lambda r: float(r["probability.atrial premature"]))
    t = float(best["case"].split("@")[1][:-1])
    out = tmp / "beat"
    medlens("explain", "--model", str(model), "--input", str(folder / name), "--method", "integrated_gradients",
            "--start", f"{t - 0.25:.4f}", "--out", str(out), "--quiet")
    summary = json.loads((out / "summary.json").read_text())
    Path(args.results).mkdir(parents=True, exist_ok=True)
    shutil.copy(out / "signal.png", Path(args.results) / "kinds_cli_beat.png")
    return {
        "record": name,
        "stored": {"recipe_fs": meta["recipe"]["fs"], "size": meta["recipe"]["size"], "leads": meta["recipe"]["leads"],
                   "windows": meta["windows"], "split": meta["split"], "cases": meta["cases"],
                   "test_from_seconds": start, "skipped": meta["skipped"]},
        "held_out_test_stretch": meta["test"],
        "test_stretch_atrial_beats": len(test_a),
        "explained_beat": {"seconds": t, "probabilities": summary["probabilities"],
                           "window": summary["preprocessing"]["notes"], "span": summary["preprocessing"]["geometry"]["span"],
                           "figure": "kinds_cli_beat.png"},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options(p, "kinds_cli")
    p.add_argument("--reports", required=True)
    p.add_argument("--record", required=True, help="WFDB record path without suffix")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--ecg-epochs", type=int, default=15)
    p.add_argument("--jw-notes", type=int, default=120)
    p.add_argument("--permutations", type=int, default=30)
    p.add_argument("--results", default="benchmarks/results", help="where the beat's figure goes")
    args = p.parse_args(argv)
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # every medlens command runs with these threads

    def run(log) -> dict:
        t0 = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix="kinds_cli_"))
        result = {"notes": notes_part(args, tmp), "ecg": ecg_part(args, tmp), "commands": COMMANDS}
        return {**result, "seconds": round(time.perf_counter() - t0, 1)}

    return run_and_report(run, args.out, name="kinds_cli", seed=args.seed, config=vars(args), echo=False)


if __name__ == "__main__":
    sys.exit(main())
