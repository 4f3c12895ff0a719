"""Presentation of the leaderboard: curve plots, the HTML section, the demo section.

Everything here consumes a summary (:func:`medlens.evaluation.leaderboard.summarise`) or
results; nothing computes a metric. matplotlib is imported lazily, inside the functions that
draw.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from medlens.evaluation.leaderboard import BASELINE_PREFIX, summary_table, write_summary
from medlens.evaluation.registry import get_metric

if TYPE_CHECKING:  # pragma: no cover
    from medlens.app.demo import DemoContext
    from medlens.report import Report, Section

__all__ = ["curves_png", "evaluation_section", "leaderboard_section", "write_leaderboard_outputs"]

_CURVE_TITLES = {
    "deletion_auc": ("Deletion: most important regions removed first (lower is better)", "fraction of regions removed"),
    "insertion_auc": ("Insertion: most important regions restored first (higher is better)", "fraction of regions restored"),
}


def _display(entry: str, kinds: dict[str, str]) -> str:
    return entry[len(BASELINE_PREFIX):] + " (baseline)" if kinds.get(entry) == "baseline" else entry


def curves_png(summary: dict) -> bytes | None:
    """Mean deletion and insertion curves of every method (baselines dashed), side by side."""
    metrics = [m for m in ("deletion_auc", "insertion_auc") if summary["curves"].get(m)]
    if not metrics:
        return None
    import matplotlib.pyplot as plt

    from medlens.viz import figure_png

    kinds = summary["config"]["kinds"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(6.4 * len(metrics), 3.4), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        block = summary["curves"][metric]
        title, xlabel = _CURVE_TITLES.get(metric, (metric, "fraction of positions"))
        aucs = {r["method"]: r["mean"] for r in summary["rows"] if r["metric"] == metric}
        for entry, curve in block["methods"].items():
            baseline = kinds.get(entry) == "baseline"
            auc = aucs.get(entry)
            label = f"{_display(entry, kinds)} ({auc:.3f})" if auc is not None else _display(entry, kinds)
            ax.plot(block["fractions"], curve, ls="--" if baseline else "-", lw=1.1 if baseline else 1.6,
                    color="0.5" if entry == BASELINE_PREFIX + "random" else None, label=label)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel("probability of the explained class", fontsize=8)
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, title="method (AUC)", title_fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5),
                  frameon=False)
    fig.tight_layout()
    return figure_png(fig, dpi=80)


def leaderboard_section(
    report: "Report", summary: dict, *, title: str = "How far to trust each explanation", preamble: str = ""
) -> "Section":
    """Add the leaderboard to ``report``: verdict, table with 95 % CIs, shortcut audit, curves.

    ``preamble``: a first paragraph (plain text, escaped), e.g. the model's accuracy.
    """
    config, verdict = summary["config"], summary["verdict"]
    sec = report.section(title)
    if preamble:
        sec.add_text(preamble)
    n = config["n_samples"]
    described = {"random": "random noise", "centre": "a centre prior", "edge": "an edge detector"}
    baselines = [described.get(e[len(BASELINE_PREFIX):], e) for e in config["entries"] if config["kinds"][e] == "baseline"]
    sec.add_text(
        f"Every attribution method was scored on {n} cases of {config['data'] or 'the data'} "
        f"(explaining the {'true label' if config['target'] == 'label' else 'predicted class'})"
        + (f", next to baseline maps that ignore the model ({', '.join(baselines)})" if baselines else "")
        + ". Numbers are means with 95 % bootstrap confidence intervals."
    )
    if not summary.get("complete", True):
        sec.add_text("This run is incomplete: some (case, method) pairs are missing; rerun the command to finish it.", kind="note")
    shortcut_text = verdict.get("shortcut_text") or ""
    relies = shortcut_text.startswith("The model relies")
    if relies:  # the headline: no explanation makes a model that cheats trustworthy
        sec.add_text(shortcut_text, kind="verdict-bad")
    for i, sentence in enumerate(verdict["text"]):
        kind = "verdict-good" if (i == 0 and verdict["best"] and not relies) else (
            "verdict-bad" if sentence.startswith(("Do not", "No method")) else "")
        sec.add_text(sentence, kind=kind)
        if i == 0 and verdict["best"] and relies:
            sec.add_text(
                "Mind that this model relies on the shortcut marker: an explanation can be faithful to the model and "
                "still point at evidence a clinician must not accept.", kind="note",
            )
    if shortcut_text:
        sec.add_heading("Shortcut audit")
        if not relies:
            sec.add_text(shortcut_text)
        sc = summary["shortcut"]
        rows = [
            ["test images with / without the marker", f"{sc['n_with_marker']} / {sc['n_without_marker']}"],
            ["marker area (share of the image)", sc["marker_area_fraction"]],
            ["mean change of p(marker class) when the marker is pasted", sc["delta_p_pasted"]],
            ["mean change of p(marker class) when the marker is erased", sc["delta_p_erased"]],
            ["accuracy where the marker agrees with the label", sc["accuracy_marker_agrees"]],
            ["accuracy where the marker contradicts the label", sc["accuracy_marker_conflicts"]],
        ]
        sec.add_table(["measure", "value"], [[k, "n/a" if v is None else v] for k, v in rows])
    sec.add_heading("Leaderboard (mean [95 % CI])")
    headers, rows = summary_table(summary)
    sec.add_table(headers, rows)
    png = curves_png(summary)
    if png:
        sec.add_image(png, "mean deletion and insertion curves over the cases; the area under each curve is the AUC")
    sec.add_heading("What the metrics measure")
    sec.add_table(
        ["metric", "better", "meaning", "reference"],
        [
            [get_metric(m).label, {True: "higher", False: "lower", None: "diagnostic"}[get_metric(m).higher_is_better],
             get_metric(m).summary, get_metric(m).reference]
            for m in config["metrics"]
        ],
    )
    return sec


def write_leaderboard_outputs(out: str | Path, summary: dict, *, title: str = "medlens evaluation") -> list[Path]:
    """Write ``summary.json``, ``summary.csv``, ``curves.png`` (mean deletion and insertion
    curves) and ``report.html`` into ``out``; return the paths written."""
    from medlens.report import Report

    out = Path(out)
    paths = write_summary(out, summary)
    png = curves_png(summary)
    if png:
        (out / "curves.png").write_bytes(png)
        paths.append(out / "curves.png")
    report = Report(title, f"explanation leaderboard on {summary['config']['data'] or 'the data'}")
    leaderboard_section(report, summary)
    paths.append(report.write(out / "report.html"))
    return paths


# --------------------------------------------------------------------------------------------
# Demo section
# --------------------------------------------------------------------------------------------

def _demo_settings(quick: bool) -> dict[str, Any]:
    if quick:
        return dict(size=32, n_train=96, n_val=32, n_test=6, epochs=2, batch_size=16, lr=5e-3, steps=5)
    return dict(size=48, n_train=400, n_val=60, n_test=24, epochs=8, batch_size=16, lr=3e-3, steps=10)


#: Lighter settings of the costly methods for the demo (the leaderboard records them).
_DEMO_METHOD_OPTIONS = {
    "rise": {"n_masks": 64},
    "integrated_gradients": {"n_steps": 8},
    "smoothgrad": {"n_samples": 8},
    "occlusion": {"window": 8, "stride": 8},
}


def _demo_method_options(quick: bool) -> dict[str, dict]:
    """``_DEMO_METHOD_OPTIONS`` for the registered methods that have those options."""
    from medlens.attribution.explain import methods as registered_methods
    from medlens.attribution.registry import get_method

    out = {}
    for name in registered_methods():
        wanted = _DEMO_METHOD_OPTIONS.get(name, {})
        known = get_method(name).options()
        opts = {k: v for k, v in wanted.items() if k in known}
        if quick:
            opts = {k: (max(2, v // 4) if k in ("n_masks", "n_steps", "n_samples") else v) for k, v in opts.items()}
        if opts:
            out[name] = opts
    return out


def _lesion_model(ctx: "DemoContext", name: str, *, shortcut: bool, cfg: dict[str, Any]):
    """Train (or reuse from ``ctx.out/models``) the reference CNN on a lesion benchmark."""
    from medlens.app.cache import cached_model
    from medlens.app.recipes import train_on_dataset
    from medlens.data.synthetic.lesions import write_lesion_benchmark

    key = {k: cfg[k] for k in ("size", "n_train", "n_val", "n_test", "epochs", "batch_size", "lr")}
    data = write_lesion_benchmark(
        ctx.out / "data" / f"{name}.npz", size=cfg["size"], n_train=cfg["n_train"], n_val=cfg["n_val"],
        n_test=cfg["n_test"], seed=ctx.seed, shortcut=shortcut,
    )
    model, meta, _reused = cached_model(
        ctx.out / "models" / f"{name}-cnn.pt", {**key, "shortcut": shortcut, "seed": ctx.seed},
        lambda: train_on_dataset(
            str(data), epochs=cfg["epochs"], seed=ctx.seed, progress=False, batch_size=cfg["batch_size"], lr=cfg["lr"]
        ),
    )
    return model, meta, data


def evaluation_section(ctx: "DemoContext", report: "Report") -> None:
    """Demo: the leaderboard on the ground-truth lesion benchmark and on its shortcut variant.

    The demo model (PneumoniaMNIST) has no evidence masks, so this section trains (or reuses)
    a small CNN on a small 2D lesion benchmark and on its shortcut variant and scores every
    registered method on a few test cases.
    """
    import numpy as np

    from medlens.data import load_dataset
    from medlens.errors import MedlensError
    from medlens.evaluation.leaderboard import LeaderboardSettings, evaluate

    cfg = _demo_settings(ctx.quick)
    intro = report.section("Evaluation on a ground-truth lesion benchmark")
    intro.add_text(
        f"Lesions with exact masks were inserted into real chest X-rays ({cfg['size']}x{cfg['size']}); the label is "
        "'lesion present'. A reference CNN was trained on it, and a second one on a shortcut variant in which a small "
        "bright marker in the corner accompanies most lesion images in training but appears at random in the test images. "
        f"Each registered method is scored on {cfg['n_test']} test cases against the known lesion (and marker) masks."
    )
    curves = {"deletion_auc": {"steps": cfg["steps"]}, "insertion_auc": {"steps": cfg["steps"]}}
    options = _demo_method_options(ctx.quick)
    # The demo leaves out max-sensitivity (it explains every case again per noise draw; `medlens
    # evaluate` scores it); --quick keeps one metric of each remaining kind.
    clean_metrics = (
        ("deletion_auc", "insertion_auc", "pointing_game", "randomisation_spearman") if ctx.quick else
        ("deletion_auc", "insertion_auc", "pointing_game", "mass_in_mask", "iou", "randomisation_spearman",
         "randomisation_ssim")
    )
    full = LeaderboardSettings(
        seed=ctx.seed, cases_per_batch=cfg["n_test"], method_options=options, metrics=clean_metrics, metric_options=curves,
    )
    # The shortcut variant is about where attribution falls and what the model uses; the
    # faithfulness and sanity checks are those of the clean benchmark.
    audit = LeaderboardSettings(
        seed=ctx.seed, cases_per_batch=cfg["n_test"], method_options=options,
        metrics=("pointing_game", "marker_mass") if ctx.quick else ("pointing_game", "mass_in_mask", "marker_mass"),
    )
    for name, shortcut, title, settings in (
        ("lesions", False, "Leaderboard: lesion benchmark", full),
        ("lesions-shortcut", True, "Leaderboard: shortcut variant", audit),
    ):
        t0 = time.perf_counter()
        model, meta, data = _lesion_model(ctx, name, shortcut=shortcut, cfg=cfg)
        test = load_dataset(data, "test")
        with np.load(data) as raw:
            markers = torch.from_numpy(raw["test_marker_masks"]) if shortcut else None
        kwargs = dict(out=ctx.out / "evaluation" / name, settings=settings, data_name=f"{name} test split",
                      class_names=test.class_names, progress=False)
        try:  # a rerun with the same model and methods reuses the scores
            summary = evaluate(model, test.inputs, test.labels, test.masks, markers, **kwargs)
        except MedlensError:  # other settings (a retrained model, new methods): start over
            summary = evaluate(model, test.inputs, test.labels, test.masks, markers, restart=True, **kwargs)
        leaderboard_section(
            report, summary, title=title,
            preamble=f"Model: test accuracy {meta['test']['accuracy']:.3f}, AUROC {meta['test']['auroc']:.3f} "
            f"({meta['epochs']} epochs on {cfg['n_train']} training images).",
        )
        ctx.timings[f"evaluation:{name}"] = time.perf_counter() - t0
