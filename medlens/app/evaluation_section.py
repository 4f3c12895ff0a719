"""The leaderboard in a report: its section and output files, and the demo's leaderboard section.

The section is drawn by :mod:`medlens.report.leaderboard` (and its curves by
:mod:`medlens.viz.leaderboard`); here the metric registry supplies what the report says about
each metric, and the demo trains its lesion models and runs the leaderboard.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from medlens.evaluation.leaderboard import summary_table, write_summary
from medlens.evaluation.registry import get_metric

if TYPE_CHECKING:  # pragma: no cover
    from medlens.app.demo import DemoContext
    from medlens.report import Report, Section

__all__ = ["evaluation_section", "leaderboard_section", "metric_descriptions", "write_leaderboard_outputs"]


def metric_descriptions(metrics) -> list[list[Any]]:
    """``[label, better, meaning, reference]`` for each metric name, from the metric registry."""
    return [
        [get_metric(m).label, {True: "higher", False: "lower", None: "diagnostic"}[get_metric(m).higher_is_better],
         get_metric(m).summary, get_metric(m).reference]
        for m in metrics
    ]


def leaderboard_section(
    report: Report, summary: dict, *, title: str = "How far to trust each explanation", preamble: str = ""
) -> Section:
    """Add the leaderboard to ``report`` (:func:`medlens.report.leaderboard.leaderboard_section`)."""
    from medlens.report.leaderboard import leaderboard_section as draw

    return draw(report, summary, summary_table(summary), metric_descriptions(summary["config"]["metrics"]),
                title=title, preamble=preamble,
                metric_labels={m: get_metric(m).label for m in summary["config"]["metrics"]})


def write_leaderboard_outputs(out: str | Path, summary: dict, *, title: str = "medlens evaluation",
                              cautions: Sequence[str] = ()) -> list[Path]:
    """Write ``summary.json``, ``summary.csv``, ``curves.png`` (mean deletion and insertion
    curves) and ``report.html`` into ``out``; return the paths written. ``cautions`` (the model
    at chance, cases unlike its training data) come first on the page."""
    from medlens.core.files import atomic_write
    from medlens.report import Report
    from medlens.viz.leaderboard import curves_png

    out = Path(out)
    paths = write_summary(out, summary)
    png = curves_png(summary)
    if png:
        paths.append(atomic_write(out / "curves.png", png))
    report = Report(title, f"explanation leaderboard on {summary['config']['data'] or 'the data'}")
    if cautions:
        sec = report.section("Before reading the leaderboard")
        for caution in cautions:
            sec.add_text(caution, kind="verdict-bad")
    leaderboard_section(report, summary)
    paths.append(report.write(out / "report.html"))
    return paths


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


def _lesion_model(ctx: DemoContext, name: str, *, shortcut: bool, cfg: dict[str, Any]):
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


def evaluation_section(ctx: DemoContext, report: Report) -> None:
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
