"""The demo: train (or reuse) the 2D reference CNN on PneumoniaMNIST, explain test cases with
every registered method, and write one self-contained HTML report.

The report is assembled from section builders, ``fn(ctx, report)``, listed in
:data:`SECTIONS`; each feature adds its own builder there.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from medlens.app.attention_section import attention_section
from medlens.app.evaluation_section import evaluation_section
from medlens.app.featurevis_section import featurevis_section
from medlens.app.picking import round_robin
from medlens.app.recipes import majority_words
from medlens.app.selfexplain_sections import (
    basis_section,
    concepts_section,
    interpnet_section,
)
from medlens.core.progress import Progress
from medlens.report import Report

DEMO_DATA = "pneumoniamnist"


@dataclass
class DemoContext:
    """Everything the section builders share."""

    out: Path
    model: nn.Module
    meta: dict[str, Any]
    test_inputs: torch.Tensor
    test_labels: torch.Tensor
    cases: list[int]
    class_names: list[str]
    seed: int = 0
    quick: bool = False
    timings: dict[str, float] = field(default_factory=dict)


Section = Callable[[DemoContext, Report], None]


def demo_model(out: Path, *, epochs: int, seed: int, progress: bool = True) -> tuple[nn.Module, dict[str, Any], bool]:
    """The demo model: reuse ``out/models/pneumoniamnist-cnn.pt`` when its settings match."""
    from medlens.app.cache import cached_model
    from medlens.app.recipes import train_on_dataset

    return cached_model(
        out / "models" / f"{DEMO_DATA}-cnn.pt", {"data": DEMO_DATA, "epochs": epochs, "seed": seed},
        lambda: train_on_dataset(DEMO_DATA, epochs=epochs, seed=seed, progress=progress),
    )


def pick_cases(labels: torch.Tensor, n: int) -> list[int]:
    """The first test cases, alternating between classes so each class is shown."""
    per_class = [torch.nonzero(labels == k).flatten().tolist() for k in sorted(set(labels.tolist()))]
    return round_robin(per_class, n)


def model_section(ctx: DemoContext, report: Report) -> None:
    meta = ctx.meta
    sec = report.section("Model")
    sec.add_text(
        f"A {meta.get('arch', 'reference')} CNN trained on {meta['data']} "
        f"({', '.join(ctx.class_names)}), input shape {tuple(meta['input_shape'])}, "
        f"{meta['epochs']} epochs, seed {meta['seed']}."
    )
    sec.add_table(
        ["split", "accuracy", "AUROC"],
        [["validation", meta["val"]["accuracy"], meta["val"]["auroc"]],
         ["test", meta["test"]["accuracy"], meta["test"]["auroc"]]],
    )
    history = meta.get("history") or []
    if history:
        sec.add_heading("Training")
        sec.add_table(
            ["epoch", "loss", "val accuracy", "val AUROC"],
            [[h["epoch"], h["loss"], h["val_accuracy"], h["val_auroc"]] for h in history],
        )


def attribution_section(ctx: DemoContext, report: Report) -> None:
    from medlens.attribution.explain import explain
    from medlens.attribution.explain import methods as registered_methods
    from medlens.attribution.registry import get_method, method_call_options
    from medlens.core import engine
    from medlens.core.resize import upsample_to
    from medlens.core.targets import probabilities
    from medlens.viz import attribution_figure, comparison_figure, figure_png
    from medlens.viz.colours import SIGNED_CMAP, UNSIGNED_CMAP

    sec = report.section("Saliency and attribution")
    sec.add_text(
        "Each map shows which pixels drove the model's score for its predicted class. "
        f"Orange marks evidence for the class, purple evidence against it (signed methods, colour map {SIGNED_CMAP}); "
        f"yellow marks importance (unsigned methods, {UNSIGNED_CMAP}); the same colours as the viewer below and the "
        "files medlens explain writes. Each map is scaled on its own and fades out where it is near zero. "
        "The leaderboard further down says which of these methods to trust, with numbers."
    )
    x = ctx.test_inputs[ctx.cases]
    probs = probabilities(engine.forward(ctx.model, x, engine.Budget(batch_size=len(x))))
    labels = []
    for i, case in enumerate(ctx.cases):
        pred = int(probs[i].argmax())
        labels.append(
            f"case #{case}\nlabel {ctx.class_names[int(ctx.test_labels[case])]}\n"
            f"predicted {ctx.class_names[pred]}\n(p={float(probs[i, pred]):.2f})"
        )
    rows, maps = [], []
    for name in registered_methods():
        info = get_method(name)
        attr = explain(ctx.model, x, method=name, **method_call_options(name, seed=ctx.seed))
        ctx.timings[name] = attr.seconds
        maps.append((name, upsample_to(attr.values, x.shape[2:])))
        rows.append([name, info.summary, info.reference, attr.seconds])
    if x.ndim == 4:
        sec.add_image(figure_png(comparison_figure(x, maps, labels)), "rows: test cases; columns: methods")
    else:  # signals and volumes: one strip or slice grid per case and method
        sec.add_images([
            (figure_png(attribution_figure(x[i], values[i], name)), labels[i].replace("\n", " "))
            for name, values in maps for i in range(len(x))
        ])
    sec.add_heading("Explore the maps")
    sec.add_text("Each case with every method's map over the scan: switch methods, change the opacity, "
                 "and for volumes move through the slices.")
    for i, case in enumerate(ctx.cases):
        sec.add_viewer(_case_viewer(x[i], [(name, values[i]) for name, values in maps], labels[i], case))
    sec.add_heading("Methods and time")
    sec.add_table(["method", "what it shows", "reference", f"seconds for {len(x)} cases"], rows)


def _case_viewer(image: torch.Tensor, maps: list[tuple[str, torch.Tensor]], label: str, case: int) -> str:
    """The shared viewer for one demo case: ``image`` ``(C, *spatial)``, maps ``(C', *spatial)``."""
    from medlens.report.viewer import MapLayer, viewer_html

    signal = image.ndim == 2
    base = image.detach().double().cpu().numpy() if signal else image.detach().double().mean(0).cpu().numpy()
    layers = [MapLayer(name, values.detach().double().sum(0).cpu().numpy()) for name, values in maps]
    return viewer_html(base, layers, kind="signal" if signal else None, title=label.replace("\n", ", "),
                       alt=f"test case #{case}")


SECTIONS: list[Section] = [model_section, attribution_section, featurevis_section, attention_section, evaluation_section,
                           interpnet_section, concepts_section, basis_section]


def run_demo(
    out: str | Path = "demo-out", *, epochs: int = 8, n_cases: int = 4, seed: int = 0,
    quick: bool = False, progress: bool = True, say: Progress | None = None,
) -> Path:
    """Run the demo and return the path of the written report.

    ``progress``: show the training progress; ``say``: where the two result lines (the model's
    scores, the report's path and timings) go, by default standard output, as always.
    """
    from medlens.data import load_dataset

    out = Path(out)
    start = time.perf_counter()
    model, meta, reused = demo_model(out, epochs=epochs, seed=seed, progress=progress)
    model_seconds = time.perf_counter() - start
    test = load_dataset(DEMO_DATA, "test")
    class_names = list(meta.get("class_names") or test.class_names)
    scores = meta["test"]
    say = say or Progress(stream=sys.stdout)
    say(
        f"{'reused' if reused else 'trained'} CNN on {DEMO_DATA}: test accuracy {scores['accuracy']:.3f}"
        f"{majority_words(scores)}, AUROC {scores['auroc']:.3f}"
    )
    ctx = DemoContext(out, model, meta, test.inputs, test.labels, pick_cases(test.labels, n_cases), class_names, seed, quick)
    report = Report("medlens demo report", f"{DEMO_DATA}: what drives the reference model's decisions, and how far to trust it")
    for build in SECTIONS:
        t0 = time.perf_counter()
        build(ctx, report)
        ctx.timings[f"section:{build.__name__}"] = time.perf_counter() - t0
    path = report.write(out / "report.html")
    say(f"report written to {path} ({timings_words(time.perf_counter() - start, model_seconds, reused, ctx.timings)})")
    return path


def timings_words(total: float, model_seconds: float, reused: bool, timings: dict[str, float]) -> str:
    """Where the demo's time went: training (or reusing) the model first, then each section; the
    model section, which only tabulates the model's scores, is called "model table" so that its
    fraction of a second is not read as the model's cost."""
    names = {"model": "model table"}
    parts = [f"{'reusing' if reused else 'training'} the model {model_seconds:.1f} s"]
    parts += [f"{names.get(name, name)} {v:.1f} s" for k, v in timings.items() if k.startswith("section:")
              for name in [k.split(":", 1)[1].removesuffix("_section")]]
    return f"{total:.1f} s; {', '.join(parts)}"
