"""``medlens attention``: how far an attention model's attention can be trusted (Jain and Wallace 2019).

Writes ``attention.json`` (the numbers and the verdict), ``verdict.txt``, ``report.html`` (numbers,
verdict and example cases) and one PNG per example figure.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, command_parser

    p = command_parser(sub, "attention", help="test whether a model's attention can be read as an explanation",
                       doc=__doc__, examples=[
                           "medlens train --data ecg5000 --arch attention-rnn --out ecg-rnn.pt",
                           "medlens attention --model ecg-rnn.pt --data ecg5000 --limit 200 --out attention/",
                           "medlens attention --model reports-rnn.pt --data reports.npz --permutations 50 --out attention/",
                       ])
    p.add_argument("--model", required=True, help="medlens model file of an attention model (arch attention-rnn)")
    p.add_argument("--data", required=True, help="ecg5000 or PATH.npz with {split}_signals or {split}_tokens")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--split", default="test", help="split to analyse (default: test)")
    p.add_argument("--permutations", type=int, default=100, help="attention permutations per sequence (default 100)")
    p.add_argument("--ig-steps", type=int, default=32, help="integrated-gradients steps; 0 skips IG (default 32)")
    p.add_argument("--examples", type=int, default=4, help="example cases to draw (default 4)")
    add_flags(p, "limit", "budget", "seed", "quiet")
    p.set_defaults(run=run)


def _npz_extras(path: str) -> tuple[tuple[str, ...] | None, float | None]:
    """The vocabulary and the sampling rate stored beside an npz data set, if any."""
    import numpy as np

    from medlens.data.synthetic.reports_text import load_vocab

    if not path.lower().endswith(".npz"):
        return None, None
    vocab = load_vocab(path)
    with np.load(path, allow_pickle=False) as data:
        fs = float(data["fs"]) if "fs" in data.files and data["fs"].size == 1 else None
    return vocab, fs


def run(args: argparse.Namespace) -> int:
    from medlens.app.attention_section import add_attention_analysis, pick_examples
    from medlens.attribution.sequence import require_attention_model
    from medlens.cli.common import budget_kwargs, staged_output, write_json
    from medlens.data.datasets import load_dataset
    from medlens.errors import MedlensError
    from medlens.evaluation.attention import attention_faithfulness, verdict
    from medlens.models import load_model
    from medlens.report import Report

    if args.permutations < 1:
        raise MedlensError(f"--permutations must be at least 1, got {args.permutations}")
    if args.ig_steps < 0 or args.examples < 0:
        raise MedlensError("--ig-steps and --examples must not be negative")
    model, meta = load_model(args.model)
    require_attention_model(model)
    data = load_dataset(args.data, args.split)
    n = len(data) if args.limit is None else min(args.limit, len(data))
    x, labels = data.inputs[:n], data.labels[:n]
    masks = None if data.masks is None else data.masks[:n]
    vocab, fs = _npz_extras(str(args.data))
    result = attention_faithfulness(
        model, x, labels=labels, masks=masks, n_permutations=args.permutations, ig_steps=args.ig_steps, seed=args.seed,
        **budget_kwargs(args),
    )
    summary = result.summary()
    level, sentences = verdict(summary)
    class_names = list(meta.get("class_names") or data.class_names)
    with staged_output(args.out) as out:
        report = Report("medlens attention analysis", f"{getattr(model, 'arch', 'model')} on {data.name}")
        sec = report.section(f"Attention on {data.name}")
        sec.add_text(f"{n} sequences of {data.name}; model {args.model}.")
        pngs = add_attention_analysis(
            sec, result, x, cases=pick_examples(labels, masks, args.examples), class_names=class_names,
            masks=masks, vocab=vocab, fs=fs,
        )
        for name, png in pngs.items():
            (out / name).write_bytes(png)
        write_json(out / "attention.json", {
            "model": str(args.model),
            "data": str(args.data),
            "split": args.split,
            "summary": summary,
            "verdict": level,
            "sentences": sentences,
            "params": result.params,
            "gradient_method": result.gradient_method,
        })
        (out / "verdict.txt").write_text("\n".join([f"verdict: {level}", *sentences]) + "\n", encoding="utf-8")
        report.write(out / "report.html")
    print(f"attention on {data.name} ({n} sequences): {level}. {sentences[-1]} -> {args.out}")
    return 0
