"""Real clinical text (issue 22, part 3): Indiana University chest X-ray reports, trained from their own labels.

    OMP_NUM_THREADS=1 python benchmarks/clinical_text.py --reports /work/realdata/indiana_reports.csv \
        [--task abnormal cardiomegaly] [--epochs 8] [--seed 0] [--out benchmarks/results/clinical_text.json]

Stores its numbers through ``_runner.write_result`` (``benchmarks/results/clinical_text.json``).

What a new user would do with medlens' Python functions, on the OpenI reports (3,955 de-identified
reports; ``XXXX`` marks removed identifiers):

1. Write ``notes.csv`` with columns ``case,text,label,group`` from the corpus: ``text`` = the
   FINDINGS and IMPRESSION sections; ``label`` from the MeSH column, either ``normal`` / ``abnormal``
   (MeSH "normal" or not; task ``abnormal``) or ``cardiomegaly`` / ``other`` (a MeSH term starting
   "Cardiomegaly"; task ``cardiomegaly``); ``group`` = the report uid (one report per study).
   Reports whose two sections are both empty, and MeSH "No Indexing", are left out. Not used as
   text: MeSH, Problems (the labels themselves), indication and comparison.
2. ``read_notes`` it, split by group (70/15/15 of the uids), learn the tokenizer on the training
   notes only, encode at ``--max-length`` tokens (the number truncated is stated), train the
   attention BiGRU (medlens' ``attention-rnn``) with balanced sampling.
3. Held-out AUROC; for each positive held-out note whose text names the finding, whether one of
   its five highest-scoring tokens names it, for attention, grad x input and integrated
   gradients (both for the positive class, signed: evidence for it first), against five random
   tokens (the exact chance ``1 - C(n - m, 5) / C(n, 5)`` for ``m`` finding tokens among ``n``).
   Finding words: task ``cardiomegaly``: cardiomegaly, enlarged, enlargement; task ``abnormal``:
   the words of the note's own MeSH headings (the part before the first "/", e.g. "Opacity",
   "Calcified Granuloma"), matched on a stem (the word less its last two letters, at least four
   letters: "opacity" matches "opacities").
4. Jain and Wallace's tests on held-out notes, with the finding-word mask as the rationale.
5. One positive note explained into ``tokens.csv`` and pictures, and the model file written and
   read back (the tokenizer restored from the file gives the same predictions).

Label leakage: MeSH terms were assigned by annotators reading these very reports, so the label is
by construction a function of the text; the model is asked to recover it, not to predict beyond
the report. For normal vs abnormal the impression ("No acute cardiopulmonary abnormality",
"Normal chest x-XXXX") is legitimate report text and kept; the MeSH/Problems columns never
enter the text, and the tokenizer sees only training notes.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from _runner import options, run_and_report

from medlens.attribution.tokens import explain_tokens, token_rows, top_tokens
from medlens.core.random import seeded
from medlens.data.formats.text import read_notes, split_by_group
from medlens.data.tokenizer import NoteTokenizer, notes_dataset
from medlens.evaluation.attention import attention_faithfulness, verdict
from medlens.models.attention_rnn import AttentionRNN
from medlens.models.io import load_model, save_model
from medlens.models.training import evaluate_classifier, train_classifier
from medlens.viz.notes import write_note_explanation

TASKS = {
    "abnormal": ("normal", "abnormal"),
    "cardiomegaly": ("other", "cardiomegaly"),
}
CARDIO_WORDS = ("cardiomegaly", "enlarged", "enlargement")
STOP = {"and", "the", "with", "of", "in", "to", "no", "not"}


def corpus_rows(path: str, task: str) -> list[dict[str, str]]:
    """``case,text,label,group,mesh`` rows of the corpus for ``task``."""
    out = []
    with open(path, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            text = " ".join(s.strip() for s in (r["findings"], r["impression"]) if s and s.strip())
            mesh = (r["MeSH"] or "").strip()
            if not text or not mesh or mesh.lower() == "no indexing":
                continue
            if task == "abnormal":
                label = "normal" if mesh.lower() == "normal" else "abnormal"
            else:
                label = "cardiomegaly" if any(t.strip().lower().startswith("cardiomegaly") for t in mesh.split(";")) else "other"
            out.append({"case": r["uid"], "text": text, "label": label, "group": r["uid"], "mesh": mesh})
    return out


def finding_stems(task: str, mesh: str) -> list[str]:
    if task == "cardiomegaly":
        words = CARDIO_WORDS
    else:
        words = []
        for term in mesh.split(";"):
            head = term.split("/")[0].lower()
            words += [w for w in "".join(c if c.isalpha() else " " for c in head).split() if w not in STOP and len(w) >= 3]
    return sorted({w[: max(4, len(w) - 2)] for w in words})


def is_finding(token: str, stems: list[str]) -> bool:
    return len(token) >= 3 and any(token.startswith(s) for s in stems)


def chance_in_top(n: int, m: int, k: int = 5) -> float:
    """Chance that ``k`` random distinct positions of ``n`` include one of ``m`` marked ones."""
    k = min(k, n)
    return 1.0 - math.comb(n - m, k) / math.comb(n, k) if n - m >= k else 1.0


def run_task(args: argparse.Namespace, task: str, log) -> dict:
    rows = corpus_rows(args.reports, task)
    class_names = TASKS[task]
    tmp = Path(tempfile.mkdtemp(prefix=f"clinical_text_{task}_"))
    notes_csv = tmp / "notes.csv"
    with open(notes_csv, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=["case", "text", "label", "group"], extrasaction="ignore")
        w.writeheader()
        w.writerows(rows)
    mesh_of = {r["case"]: r["mesh"] for r in rows}
    notes = read_notes(notes_csv, require_labels=True)
    train_idx, val_idx, test_idx = split_by_group(notes.groups, val=0.15, test=0.15, seed=args.seed)
    train_n, val_n, test_n = (notes.subset(ix) for ix in (train_idx, val_idx, test_idx))
    assert not (set(train_n.groups) & set(test_n.groups)) and not (set(train_n.groups) & set(val_n.groups))
    tok = NoteTokenizer.train(train_n.texts, max_vocab=args.max_vocab, min_frequency=2, max_length=args.max_length)
    train, val, test = (notes_dataset(n, tok, class_names, name=f"indiana-{task}/{s}")
                        for n, s in ((train_n, "train"), (val_n, "val"), (test_n, "test")))
    counts = {s: {c: int((d.data.labels == k).sum()) for k, c in enumerate(class_names)}
              for s, d in (("train", train), ("val", val), ("test", test))}
    log(f"{task}: {len(notes)} notes, vocabulary {tok.vocab_size}; {counts}; {train.encoded.statement()}")
    labels = train.data.labels
    weights = 1.0 / torch.bincount(labels, minlength=2).double()[labels]
    t0 = time.perf_counter()
    with seeded(args.seed):
        model = AttentionRNN(2, vocab_size=tok.vocab_size, embed_dim=args.embed, hidden_size=args.hidden,
                             attention_size=args.hidden)
        history = train_classifier(model, train.data.inputs, labels, val.data.inputs, val.data.labels,
                                   epochs=args.epochs, lr=3e-3, batch_size=64, seed=args.seed,
                                   sample_weights=weights, progress=False)
    train_s = time.perf_counter() - t0
    scores = evaluate_classifier(model, test.data.inputs, test.data.labels)
    log(f"{task}: trained in {train_s:.0f} s; held-out accuracy {scores.accuracy:.3f}, AUROC {scores.auroc:.3f}")

    # model file round trip: the tokenizer comes back from the file
    model_path = tmp / "model.pt"
    save_model(model, model_path, {"class_names": list(class_names), "tokenizer": tok.to_json(),
                                   "data": f"indiana-{task}", "test": scores.as_dict()})
    loaded, meta = load_model(model_path)
    tok2 = NoteTokenizer.from_meta(meta)
    same = torch.allclose(evaluate_classifier(loaded, tok2.encode(test_n.texts).ids, test.data.labels).probabilities,
                          scores.probabilities, atol=1e-6)

    # top-5 tokens of positive held-out notes
    pos = (test.data.labels == 1).nonzero().flatten()
    ids = test.data.inputs[pos]
    t0 = time.perf_counter()
    ex = explain_tokens(model, ids, target=1, methods=("grad_x_input", "integrated_gradients"), n_steps=32)
    explain_s = time.perf_counter() - t0
    columns = ex.columns()
    tops = {name: top_tokens(values, ex.lengths, 5, signed=True) for name, values in columns.items()}
    hits = {name: [] for name in columns}
    chance, mask_rows, no_word = [], torch.zeros_like(ids, dtype=torch.float32), 0
    for j, i in enumerate(pos.tolist()):
        case = test.cases[i]
        stems = finding_stems(task, mesh_of[case])
        toks = test.encoded.tokens[i]
        marked = [p for p, t in enumerate(toks) if is_finding(t, stems)]
        if not marked:
            no_word += 1
            continue
        mask_rows[j, marked] = 1.0
        for name in columns:
            hits[name].append(any(p in marked for p in tops[name][j]))
        chance.append(chance_in_top(len(toks), len(marked)))
    n_eval = len(chance)
    top5 = {name: (sum(h) / n_eval if n_eval else None) for name, h in hits.items()}
    top5["random_tokens"] = sum(chance) / n_eval if n_eval else None
    log(f"{task}: top-5 hit rate over {n_eval} positive notes naming the finding: "
        + ", ".join(f"{k} {v:.3f}" for k, v in top5.items() if v is not None))

    # Jain-Wallace on held-out notes (positives with their finding mask, then negatives)
    neg = (test.data.labels == 0).nonzero().flatten()
    n_pos = min(len(pos), args.jw_notes // 2)
    pick = torch.cat([pos[:n_pos], neg[: args.jw_notes - n_pos]])
    jw_masks = torch.cat([mask_rows[:n_pos], torch.zeros(len(pick) - n_pos, ids.shape[1])])[:, None]
    t0 = time.perf_counter()
    jw = attention_faithfulness(model, test.data.inputs[pick], labels=test.data.labels[pick], masks=jw_masks,
                                n_permutations=args.permutations, ig_steps=16, seed=args.seed)
    jw_s = time.perf_counter() - t0
    summary = jw.summary()
    headline, sentences = verdict(summary)
    log(f"{task}: Jain-Wallace on {len(pick)} notes in {jw_s:.0f} s: {headline}")

    # one positive note explained into files
    j = max(range(len(pos)), key=lambda q: float(ex.probabilities[q, 1]))
    i = int(pos[j])
    note_dir = Path(args.results) / f"clinical_text_{task}_note"
    rows_ = token_rows(ex, j, test.encoded.tokens[i], test.encoded.words[i])
    write_note_explanation(note_dir, rows_, title=f"uid {test.cases[i]}: P({class_names[1]}) = "
                                                  f"{float(ex.probabilities[j, 1]):.3f}", picture="attention")
    return {
        "task": task,
        "class_names": list(class_names),
        "finding_words": list(CARDIO_WORDS) if task == "cardiomegaly" else "the words of each note's MeSH headings (stems)",
        "n_notes": len(notes),
        "split_counts": counts,
        "split": "by report uid (group), 70/15/15 of uids; no uid in two splits",
        "vocabulary": tok.vocab_size,
        "max_length": args.max_length,
        "truncation": {s: d.encoded.statement() for s, d in (("train", train), ("val", val), ("test", test))},
        "train_seconds": round(train_s, 1),
        "history": history,
        "test": {"accuracy": scores.accuracy, "auroc": scores.auroc, "n": len(test.data)},
        "model_file_round_trip_same_probabilities": bool(same),
        "top5": {
            "n_positive_test_notes": int(len(pos)),
            "n_evaluated (naming the finding)": n_eval,
            "n_without_finding_word": no_word,
            "hit_rate": top5,
            "seconds_explaining": round(explain_s, 1),
        },
        "jain_wallace": {"n_notes": int(len(pick)), "seconds": round(jw_s, 1), "summary": summary,
                         "verdict": headline, "sentences": sentences},
        "explained_note": {"uid": test.cases[i], "folder": str(note_dir)},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options(p, "clinical_text")
    p.add_argument("--reports", required=True, help="indiana_reports.csv (OpenI)")
    p.add_argument("--task", nargs="+", choices=sorted(TASKS), default=["abnormal", "cardiomegaly"])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--max-length", type=int, default=128)
    p.add_argument("--max-vocab", type=int, default=5000)
    p.add_argument("--embed", type=int, default=64)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--jw-notes", type=int, default=120)
    p.add_argument("--permutations", type=int, default=30)
    p.add_argument("--results", default="benchmarks/results", help="where the explained notes' folders go")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    def run(log) -> dict:
        t0 = time.perf_counter()
        tasks = [run_task(args, task, log) for task in args.task]
        return {"corpus": os.path.basename(args.reports), "tasks": tasks, "seconds": round(time.perf_counter() - t0, 1)}

    return run_and_report(run, args.out, name="clinical_text", seed=args.seed, config=vars(args), echo=False)


if __name__ == "__main__":
    sys.exit(main())
