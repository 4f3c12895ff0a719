"""Transformer and relevance explanations on the lesion benchmark (issue 24): a small ViT and the
reference CNN trained here side by side, then the leaderboard of each; ``--variant shortcut``:
the same on the benchmark's shortcut variant, where the question is which method shows the marker.

    OMP_NUM_THREADS=1 python benchmarks/transformers.py [--threads 1] [--stem conv|patch]
        [--variant clean|shortcut] [--out benchmarks/results/transformers.json]

Steps: generate the 2D lesion benchmark (64x64, ``--n-train`` training images); train medlens's
``vit`` (a convolutional stem down to 8x8 patches - ``--stem patch`` for the plain patch
projection -, 64-wide tokens, 4 blocks of 4 heads, class token; AdamW with one-cycle warm-up,
weight decay 0.05) and medlens's reference CNN (as ``medlens train --arch cnn``) with the
training loop of ``medlens train``; on the first ``--n-eval`` test images, run the leaderboard
(:func:`medlens.evaluation.leaderboard.evaluate`, target = label) with the pointing game, mass
in mask, deletion AUC and cascading randomisation (Spearman of the fully randomised model's map
with the trained one's, lower is better): for the ViT attention rollout, Chefer's
gradient-weighted attention, Grad-CAM on the token layer, LRP (``epsilon-plus``: z+ on the stem,
epsilon on linear layers, attention probabilities as constants) and the gradient; for the CNN
Grad-CAM, LRP, CRP and the gradient. Then Jain and Wallace's tests of the ViT's attention
(:func:`medlens.evaluation.transformer_attention.transformer_attention_faithfulness`) on the
lesion-positive evaluation images. Stores the numbers through ``_runner.write_result``
(``benchmarks/results/transformers.json``, or ``--out``; with the commit, command, seed and threads).

``--variant shortcut``: the lesion benchmark's shortcut variant (a corner marker that goes with
the lesion class in 90 % of the training and validation images, independent of the label in the
test images); both models are trained as above, then the leaderboard runs on the first
``--n-eval`` test images (default all 200) with the shortcut-marker masks and the metrics
``marker_mass`` (share of the positive attribution on the marker, images that carry it) and
``mass_in_mask`` (on the lesion): the leaderboard's shortcut audit pastes the marker onto the
images without it and erases it from those with it, and its verdict says whether each model
relies on the marker (:func:`medlens.evaluation.leaderboard.verdict.relies_on_marker`). The marker
mass is also split by the explained class (target = label: about half the images with the marker
explain the class the marker does not predict). No randomisation and no attention tests. Stored
as ``benchmarks/results/transformers_shortcut.json``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import torch
from _runner import options, quick_name, quick_option, run_and_report

from medlens.core.random import seeded
from medlens.data.synthetic.lesions import make_lesion_benchmark
from medlens.evaluation.attention import verdict
from medlens.evaluation.leaderboard import LeaderboardSettings, evaluate
from medlens.evaluation.leaderboard.store import read_results
from medlens.evaluation.leaderboard.verdict import relies_on_marker
from medlens.evaluation.transformer_attention import transformer_attention_faithfulness
from medlens.models.cnn import CNN
from medlens.models.training import evaluate_classifier, shift_augment, train_classifier
from medlens.models.vit import ViT

VIT_METHODS = ["attention_rollout", "transformer_attribution", "gradcam", "lrp", "gradient"]
CNN_METHODS = ["gradcam", "lrp", "crp", "gradient"]
METRICS = ["pointing_game", "mass_in_mask", "deletion_auc", "randomisation_spearman"]
#: The shortcut variant's metrics: attribution on the marker and on the lesion.
SHORTCUT_METRICS = ["marker_mass", "mass_in_mask"]
BASELINES = ["baseline:random", "baseline:centre", "baseline:edge"]
#: Evaluation images when ``--n-eval`` is not given: the clean leaderboard's 48 (randomisation is
#: costly), the whole test set of the shortcut variant (about half of it carries the marker).
N_EVAL = {"clean": 48, "shortcut": 200}

#: The quick configuration: fewer epochs, evaluation images and permutations (200 images x 2 epochs
#: left both models at chance; at 4 epochs the CNN ranks the test images, AUROC 0.79, the ViT does not).
QUICK = {"n_train": 800, "epochs": 4, "cnn_epochs": 4, "n_eval": 8, "permutations": 3}
#: The shortcut variant's quick configuration (``--variant shortcut --quick``): fewer epochs and images.
QUICK_SHORTCUT = {"n_train": 800, "epochs": 4, "cnn_epochs": 4, "n_eval": 40}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options(p, "transformers")
    p.add_argument("--variant", choices=("clean", "shortcut"), default="clean",
                   help="the lesion benchmark (default) or its shortcut variant (stored as transformers_shortcut)")
    p.add_argument("--n-train", type=int, default=800)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--cnn-epochs", type=int, default=10)
    p.add_argument("--n-eval", type=int, default=None, help=f"evaluation images (default {N_EVAL})")
    p.add_argument("--permutations", type=int, default=20)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--pool", choices=("cls", "mean"), default="cls")
    p.add_argument("--stem", choices=("conv", "patch"), default="conv")
    quick_option(p, QUICK)
    args = p.parse_args(argv)
    shortcut = args.variant == "shortcut"
    result_name = quick_name(args, "transformers_shortcut" if shortcut else "transformers",
                             QUICK_SHORTCUT if shortcut else QUICK)
    if args.n_eval is None:
        args.n_eval = N_EVAL[args.variant]
    torch.set_num_threads(args.threads)
    return run_and_report(lambda log: (run_shortcut if shortcut else run)(args, log), args.out, name=result_name,
                          seed=args.seed, config=vars(args), echo=False)


def train_models(args: argparse.Namespace, split: dict, log, timings: dict) -> dict:
    """Train the ViT and the reference CNN on ``split``; ``{name: (model, info)}``."""
    models = {}
    for name in ("vit", "cnn"):
        start = time.perf_counter()
        with seeded(args.seed):
            if name == "vit":
                model = ViT(2, 1, 2, input_shape=(1, 64, 64), patch=8, dim=64, depth=4, heads=4, pool=args.pool,
                            stem=args.stem)
                epochs, lr, decay = args.epochs, args.lr, 0.05
            else:  # as medlens train --arch cnn
                model, epochs, lr, decay = CNN(2, 1, 2, widths=(16, 32, 64), input_shape=(1, 64, 64)), args.cnn_epochs, 3e-3, 1e-4
            history = train_classifier(model, *split["train"], *split["val"], epochs=epochs, lr=lr, weight_decay=decay,
                                       seed=args.seed, augment=shift_augment, progress=False)
        timings[f"train_{name}_s"] = time.perf_counter() - start
        model.eval()
        test = evaluate_classifier(model, *split["test"]).as_dict()
        models[name] = (model, {"arch": name, "config": model.config, "epochs": epochs, "lr": lr, "weight_decay": decay,
                                "test": test, "best_val_auroc": max((h.get("val_auroc", 0.0) for h in history), default=None)})
        log(f"trained {name} in {timings[f'train_{name}_s']:.0f} s: test {test}")
    return models


def leaderboards(args: argparse.Namespace, models: dict, x, y, masks, markers, metrics: list[str], data_name: str,
                 log, timings: dict) -> dict:
    """The leaderboard of each model (its methods, ``metrics`` and the baselines):
    ``{name: (table {method: {metric: {n, mean, ci_low, ci_high}}}, errors, summary)}``."""
    vit = models["vit"][0]
    token_layer = f"blocks.{len(vit.blocks) - 1}.norm1"  # the last block's attention input
    out = {}
    for name, methods, method_options in (
        ("vit", VIT_METHODS, {"gradcam": {"layer": token_layer}, "gradient": {"abs": True}}),
        ("cnn", CNN_METHODS, {"gradient": {"abs": True}}),
    ):
        settings = LeaderboardSettings(methods=methods, metrics=metrics, target="label", seed=args.seed,
                                       cases_per_batch=16, batch_size=16, method_options=method_options)
        with tempfile.TemporaryDirectory() as folder:
            start = time.perf_counter()
            summary = evaluate(models[name][0], x, y, masks, markers, out=folder, settings=settings,
                               data_name=data_name, progress=False)
            timings[f"leaderboard_{name}_s"] = time.perf_counter() - start
            if "marker_mass" in metrics:
                summary["marker_mass_by_target"] = _by_target(read_results(folder)[1], "marker_mass")
        table = {method: {} for method in methods + BASELINES}
        for row in summary["rows"]:
            if row["method"] in table:
                table[row["method"]][row["metric"]] = {k: row[k] for k in ("n", "mean", "ci_low", "ci_high") if k in row}
        out[name] = (table, summary.get("errors", {}), summary)
        log(f"leaderboard {name} done")
    return out


def _by_target(records: list[dict], metric: str) -> dict:
    """``{method: {target class: {n, mean}}}`` of ``metric`` over the leaderboard's per-case records
    (the cases where it is defined)."""
    out: dict = {}
    for r in records:
        value = r["metrics"].get(metric)
        if r["kind"] == "model" or value is None:
            continue
        cell = out.setdefault(r["method"], {}).setdefault(str(r["target"]), {"n": 0, "sum": 0.0})
        cell["n"] += 1
        cell["sum"] += value
    return {m: {t: {"n": c["n"], "mean": c["sum"] / c["n"]} for t, c in sorted(ts.items())} for m, ts in out.items()}


def _data(args: argparse.Namespace, shortcut: bool):
    data = make_lesion_benchmark(spatial_dims=2, size=64, n_train=args.n_train, n_val=100, n_test=200, seed=args.seed,
                                 shortcut=shortcut)
    split = {s: (torch.from_numpy(data[f"{s}_images"]).float()[:, None], torch.from_numpy(data[f"{s}_labels"]).long())
             for s in ("train", "val", "test")}
    return data, split


def run(args: argparse.Namespace, log) -> dict:
    """Train both models, run both leaderboards and the attention tests (the numbers)."""
    t0 = time.perf_counter()
    data, split = _data(args, shortcut=False)
    masks = torch.from_numpy(data["test_masks"])[:, None]
    log(f"lesion benchmark: {args.n_train} training images of 64x64")
    timings: dict[str, float] = {}
    models = train_models(args, split, log, timings)
    x, y, m = split["test"][0][: args.n_eval], split["test"][1][: args.n_eval], masks[: args.n_eval]
    boards = leaderboards(args, models, x, y, m, None, METRICS, "lesions-64/test", log, timings)
    model = models["vit"][0]
    positive = y == 1
    start = time.perf_counter()
    jw = transformer_attention_faithfulness(model, x[positive], 1, masks=m[positive], n_permutations=args.permutations,
                                            seed=args.seed, batch_size=16)
    timings["jain_wallace_s"] = time.perf_counter() - start
    jw_summary = jw.summary()
    level, sentences = verdict(jw_summary)
    return {
        "data": {"name": "lesions", "spatial_dims": 2, "size": 64, "n_train": args.n_train, "n_eval": int(len(x)),
                 "n_eval_positive": int(positive.sum())},
        "models": {name: info for name, (_, info) in models.items()},
        "gradcam_layer_vit": f"blocks.{len(model.blocks) - 1}.norm1",
        "leaderboard": {name: b[0] for name, b in boards.items()},
        "leaderboard_errors": {name: b[1] for name, b in boards.items()},
        "jain_wallace": {"summary": jw_summary, "verdict": level, "sentences": sentences},
        "timings_s": timings,
        "total_s": time.perf_counter() - t0,
    }


def run_shortcut(args: argparse.Namespace, log) -> dict:
    """Train both models on the shortcut variant; per model the marker and lesion mass of each
    method and the shortcut audit's verdict (the numbers)."""
    t0 = time.perf_counter()
    data, split = _data(args, shortcut=True)
    log(f"lesion benchmark, shortcut variant: {args.n_train} training images of 64x64")
    timings: dict[str, float] = {}
    models = train_models(args, split, log, timings)
    n = args.n_eval
    x, y = split["test"][0][:n], split["test"][1][:n]
    masks = torch.from_numpy(data["test_masks"])[:n, None]
    markers = torch.from_numpy(data["test_marker_masks"])[:n, None]
    boards = leaderboards(args, models, x, y, masks, markers, SHORTCUT_METRICS, "lesions-shortcut-64/test", log,
                          timings)
    audits = {}
    for name, (_, _, summary) in boards.items():
        audit = summary["shortcut"]
        audits[name] = {**audit, "relies_on_marker": relies_on_marker(audit),
                        "sentence": summary["verdict"]["shortcut_text"]}
    train_markers = torch.from_numpy(data["train_marker_masks"]).flatten(1).any(1)
    train_labels = split["train"][1]
    return {
        "data": {"name": "lesions-shortcut", "spatial_dims": 2, "size": 64, "n_train": args.n_train,
                 "n_eval": int(len(x)), "n_eval_positive": int((y == 1).sum()),
                 "n_eval_marker": int(markers.flatten(1).any(1).sum()),
                 "train_marker_agrees_with_label": float((train_markers == (train_labels == 1)).double().mean())},
        "models": {name: info for name, (_, info) in models.items()},
        "gradcam_layer_vit": f"blocks.{len(models['vit'][0].blocks) - 1}.norm1",
        "leaderboard": {name: b[0] for name, b in boards.items()},
        "leaderboard_errors": {name: b[1] for name, b in boards.items()},
        "shortcut": audits,
        "marker_mass_by_target": {name: b[2]["marker_mass_by_target"] for name, b in boards.items()},
        "timings_s": timings,
        "total_s": time.perf_counter() - t0,
    }


if __name__ == "__main__":
    sys.exit(main())
