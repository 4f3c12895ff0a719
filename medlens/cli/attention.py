"""``medlens attention``: how far an attention model's attention can be trusted (Jain and Wallace 2019).

Writes ``attention.json`` (the numbers and the verdict), ``verdict.txt``, ``report.html`` (numbers,
verdict and example cases) and one PNG per example figure.
"""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction) -> None:
    from medlens.cli.common import add_flags, add_out_folder, command_parser
    from medlens.cli.inputs import add_reference_flags, add_text_flags

    p = command_parser(sub, "attention", help="test whether a model's attention can be read as an explanation",
                       doc=__doc__, examples=[
                           "medlens train --data ecg5000 --arch attention-rnn --out ecg-rnn.pt",
                           "medlens attention --model ecg-rnn.pt --data ecg5000 --limit 200 --out attention/",
                           "medlens attention --model reports-rnn.pt --data reports.npz --permutations 50 --out attention/",
                           "medlens attention --model notes.pt --data held_out_notes.csv --limit 100 --out attention/",
                           "medlens attention --model beats.pt --data mitdb/ --limit 200 --out attention/",
                       ])
    p.add_argument("--model", required=True, help="medlens model file of an attention model (arch attention-rnn)")
    p.add_argument("--data", required=True, help="ecg5000, PATH.npz with {split}_signals or {split}_tokens, "
                                                 "a notes file (.csv/.tsv/.jsonl) for a model trained on notes, or "
                                                 "a folder of records (or one record) for a model trained on them: "
                                                 "every window it cuts from them; any other folder of records or "
                                                 "scans (or one file): each case read through the model's recipe")
    add_out_folder(p, help="output folder")
    p.add_argument("--split", default="test", help="split of a data set to analyse (default: test); of a notes file, "
                   "the notes the model was not trained on are analysed")
    p.add_argument("--permutations", type=int, default=100, help="attention permutations per sequence (default 100)")
    p.add_argument("--ig-steps", type=int, default=32, help="integrated-gradients steps; 0 skips IG (default 32)")
    p.add_argument("--examples", type=int, default=4, help="example cases to draw (default 4)")
    add_text_flags(p)
    add_reference_flags(p)
    add_flags(p, "limit", "budget", "seed", "quiet", "multi-label")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from medlens.app.attention import AttentionRequest, attention_analysis
    from medlens.cli.inputs import recipe_options

    result = attention_analysis(AttentionRequest(
        model=args.model, data=args.data, out=args.out, split=args.split, permutations=args.permutations,
        ig_steps=args.ig_steps, examples=args.examples, limit=args.limit, batch_size=args.batch_size,
        memory_mb=args.memory_mb, seed=args.seed, text_column=args.text_column, label_column=args.label_column,
        labels=args.labels, recipe=recipe_options(args), show_identifiers=args.show_identifiers,
        multi_label=args.multi_label,
    ))
    print(f"attention on {result.data_name} ({result.n} sequences): {result.level}. {result.sentences[-1]} -> {args.out}")
    return 0
