"""Real signal records (issue 22, part 4): beats cut from an MIT-BIH record's annotations.

    OMP_NUM_THREADS=1 python benchmarks/ecg_records.py --record /work/realdata/mitdb/100 \
        [--epochs 15] [--seed 0] [--out benchmarks/results/ecg_records.json]

1. Windows around every beat annotation (0.25 s before, 0.45 s after, both leads, physical units
   in mV, the record's 360 Hz) labelled from the symbols by ``--annotation-labels`` (default
   ``N:normal,A:atrial premature``; record 100 has one V beat, too few to learn or score: it is
   left out and counted, as are rhythm marks).
2. Train the attention BiGRU (``attention-rnn``, two strided convolutions in front) on the beats
   of the first 20 minutes (a stratified fifth of them held out for model selection) with
   balanced sampling; test on the beats of the last 10 minutes (after 1200 s): accuracy,
   balanced accuracy, recall per class and AUROC.
3. The model file stores the recipe (rate 360 Hz, 252 samples, leads MLII and V5); the model is
   read back and the atrial premature beat of the last 10 minutes with the highest probability is
   explained (integrated gradients per lead, and the attention) through that recipe. The same beat
   is explained again from a copy of the record resampled to 250 Hz, which the recipe brings back to
   the model's 360 Hz: probabilities and maps are compared, and the whole test stretch is scored
   from that copy.
4. Strips in seconds with the beat labels: ``ecg_records_beat.png`` (both leads, IG strip under
   each, annotations as labelled ticks, 2 s either side) and ``ecg_records_attention.png``.

Stores its numbers through ``_runner.write_result`` (``benchmarks/results/ecg_records.json``).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from _runner import options, run_and_report

from medlens.attribution.explain import explain
from medlens.core.random import generator, seeded
from medlens.data.formats.signals import load_signal
from medlens.data.records import beat_window, beat_windows, resample_signal, to_record_axis
from medlens.data.recipe import Recipe
from medlens.models.attention_rnn import build_for_inputs
from medlens.models.io import load_model, model_recipe, save_model
from medlens.models.training import evaluate_classifier, train_classifier


def stratified_holdout(labels: torch.Tensor, share: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = generator(seed, "ecg-val")
    val = []
    for k in labels.unique().tolist():
        idx = (labels == k).nonzero().flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        val.append(idx[: max(1, int(round(share * len(idx))))])
    val_idx = torch.cat(val).sort().values
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[val_idx] = False
    return keep.nonzero().flatten(), val_idx


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options(p, "ecg_records")
    p.add_argument("--record", required=True, help="WFDB record (path without suffix), e.g. /work/realdata/mitdb/100")
    p.add_argument("--annotation-labels", default="N:normal,A:atrial premature")
    p.add_argument("--before", type=float, default=0.25)
    p.add_argument("--after", type=float, default=0.45)
    p.add_argument("--split", type=float, default=1200.0, help="seconds: train before, test after")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--results", default="benchmarks/results", help="where the figures go")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    return run_and_report(lambda log: run(args, log), args.out, name="ecg_records", seed=args.seed, config=vars(args),
                          echo=False)


def run(args: argparse.Namespace, log) -> dict:
    """Train on the record's first stretch, test on its last, explain one beat (the numbers)."""
    t0 = time.perf_counter()
    signal = load_signal(args.record)
    windows = beat_windows(signal, args.annotation_labels, before=args.before, after=args.after)
    log(f"{signal}; {windows}")
    first, last = windows.between(None, args.split), windows.between(args.split, None)
    tr_idx, va_idx = stratified_holdout(first.labels, 0.2, args.seed)
    train, val = first.select(tr_idx), first.select(va_idx)
    counts = {name: {c: int((w.labels == k).sum()) for k, c in enumerate(windows.class_names)}
              for name, w in (("train", train), ("val", val), ("test", last))}
    log(f"beats per split: {counts}")
    k = len(windows.class_names)
    weights = 1.0 / torch.bincount(train.labels, minlength=k).double()[train.labels]
    ts = time.perf_counter()
    with seeded(args.seed):
        model = build_for_inputs(train.inputs, k)
        history = train_classifier(model, train.inputs, train.labels, val.inputs, val.labels, epochs=args.epochs,
                                   seed=args.seed, sample_weights=weights, progress=False)
    train_s = time.perf_counter() - ts
    scores = evaluate_classifier(model, last.inputs, last.labels)
    pred = scores.probabilities.argmax(1)
    recall = {c: float((pred[last.labels == i] == i).double().mean()) for i, c in enumerate(windows.class_names)}
    balanced = sum(recall.values()) / len(recall)
    log(f"trained in {train_s:.0f} s; last 10 min: accuracy {scores.accuracy:.4f}, balanced {balanced:.4f}, "
        f"AUROC {scores.auroc:.4f}, recall {recall}")

    # the model file records the rate through the recipe
    tmp = Path(tempfile.mkdtemp(prefix="ecg_records_"))
    save_model(model, tmp / "beats.pt", {"class_names": list(windows.class_names), "recipe": windows.recipe(),
                                         "windows": windows.meta(), "input_shape": list(train.inputs.shape[1:])})
    loaded, meta = load_model(tmp / "beats.pt")
    recipe = model_recipe(meta)
    before = float(meta["windows"]["before"])
    target = windows.class_names.index("atrial premature") if "atrial premature" in windows.class_names else 1
    candidates = (last.labels == target).nonzero().flatten()
    pick = int(candidates[scores.probabilities[candidates, target].argmax()]) if len(candidates) else 0
    sample = int(last.samples[pick])
    x, span = beat_window(signal, sample, recipe, before)
    with torch.no_grad():
        logits, att = loaded.forward_with_attention(x)
    prob = float(logits.softmax(1)[0, target])
    ig = explain(loaded, x, target, "integrated_gradients").values[0]  # (C, L) per lead
    # the same beat from the record at another rate: the recipe resamples it to the model's 360 Hz
    other = resample_signal(signal, 250.0)
    x2, span2 = beat_window(other, int(round(sample * 250.0 / signal.fs)), recipe, before)
    with torch.no_grad():
        prob2 = float(loaded(x2).softmax(1)[0, target])
    ig2 = explain(loaded, x2, target, "integrated_gradients").values[0]
    corr = float(torch.corrcoef(torch.stack([ig.flatten(), ig2.flatten()]))[0, 1])
    # every beat of the last 10 minutes from the 250 Hz copy, cut at the model's 360 Hz by the stored recipe
    copy = beat_windows(other, args.annotation_labels, before=args.before, after=args.after, fs=recipe.fs,
                        leads=recipe.leads, class_names=windows.class_names).between(args.split, None)
    copy_scores = evaluate_classifier(loaded, copy.inputs, copy.labels)
    log(f"last 10 min from a 250 Hz copy resampled to 360 Hz: accuracy {copy_scores.accuracy:.4f}, "
        f"AUROC {copy_scores.auroc:.4f} ({len(copy)} beats)")
    log(f"beat at {sample / signal.fs:.2f} s ({last.symbols[pick]}): P = {prob:.4f}; from a 250 Hz copy: "
        f"P = {prob2:.4f}, IG correlation {corr:.3f}")

    from medlens.viz.signals import signal_attribution_figure, signal_strips_figure
    import matplotlib.pyplot as plt

    n = int(signal.values.shape[-1])
    att_record = to_record_axis(att[0], span, n)
    ig_record = to_record_axis(ig, span, n)
    anns = [(a.sample, a.symbol) for a in signal.annotations]
    results = Path(args.results)
    results.mkdir(parents=True, exist_ok=True)
    title = (f"MIT-BIH {Path(args.record).name}, beat at {sample / signal.fs:.2f} s ({last.symbols[pick]}): "
             f"P({windows.class_names[target]}) = {prob:.3f}; integrated gradients per lead")
    fig = signal_attribution_figure(signal.values, ig_record, signal.fs, signal.channels, anns, units=signal.units,
                                    span=span, margin_s=2.0, title=title)
    fig.savefig(results / "ecg_records_beat.png", dpi=120)
    plt.close(fig)
    lo, hi = max(0, span[0] - int(2 * signal.fs)), min(n, span[1] + int(2 * signal.fs))
    mask = torch.zeros(hi - lo)
    mask[span[0] - lo : span[1] - lo] = 1
    fig = signal_strips_figure(signal.values[:, lo:hi], [("attention", att_record[0, lo:hi]),
                                                         ("IG (sum of leads)", ig_record.sum(0)[lo:hi])],
                               mask=mask, fs=signal.fs, channel_names=signal.channels,
                               title=f"{title.split(':')[0]}: attention (seconds from {lo / signal.fs:.1f} s)")
    fig.savefig(results / "ecg_records_attention.png", dpi=120)
    plt.close(fig)

    return {
        "record": str(signal.metadata.get("Record")),
        "fs": signal.fs,
        "windows": {"before_s": args.before, "after_s": args.after, "samples": int(windows.inputs.shape[-1]),
                    "leads": list(windows.leads), "normalize": windows.normalize,
                    "annotation_labels": args.annotation_labels, "skipped": windows.skipped},
        "split": f"train+val: beats before {args.split:g} s (val: stratified 20%), test: beats after",
        "counts": counts,
        "train_seconds": round(train_s, 1),
        "history": history,
        "test": {"accuracy": scores.accuracy, "balanced_accuracy": balanced, "auroc": scores.auroc,
                 "recall": recall, "n": len(last)},
        "stored_recipe": Recipe.to_dict(recipe),
        "explained_beat": {"sample": sample, "seconds": sample / signal.fs, "symbol": last.symbols[pick],
                           "probability": prob, "span_samples": list(span),
                           "from_250Hz_copy": {"probability": prob2, "span_samples": list(span2),
                                               "ig_correlation": corr}},
        "test_from_250Hz_copy": {"accuracy": copy_scores.accuracy, "auroc": copy_scores.auroc, "n": len(copy)},
        "figures": ["ecg_records_beat.png", "ecg_records_attention.png"],
        "seconds": round(time.perf_counter() - t0, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
