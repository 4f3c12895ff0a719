"""Attention analysis in a report, shared by ``medlens attention`` and the demo.

:func:`add_attention_analysis` judges an :class:`AttentionFaithfulness` analysis (its summary
and verdict) and has :func:`medlens.report.attention.attention_analysis` write the numbers,
verdict and examples into a section. :func:`attention_section` is the demo's section: the
attention RNN on ECG5000.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import nn

from medlens.app.picking import round_robin
from medlens.core.threads import torch_threads
from medlens.evaluation.attention import AttentionFaithfulness, verdict
from medlens.report.attention import summary_rows

if TYPE_CHECKING:  # pragma: no cover
    from medlens.app.demo import DemoContext
    from medlens.report import Report
    from medlens.report.html import Section

__all__ = ["add_attention_analysis", "attention_section", "ecg_attention_model", "pick_examples", "summary_rows"]

ECG_DATA = "ecg5000"


def pick_examples(labels: torch.Tensor | None, masks: torch.Tensor | None, n: int, count: int = 0) -> list[int]:
    """Up to ``n`` sequence indices alternating between classes; with masks, positives first
    among those whose mask is non-empty (they show whether attention finds the evidence).
    Without labels or masks (windows of records labelled by none), the first of ``count``."""
    if n <= 0:
        return []
    size = len(labels) if labels is not None else (len(masks) if masks is not None else count)
    if labels is None:
        return list(range(min(n, size)))
    has_mask = masks.reshape(size, -1).amax(1) > 0.5 if masks is not None else torch.zeros(size, dtype=torch.bool)
    groups = []
    for k in sorted(set(labels.tolist()), reverse=masks is not None):
        idx = torch.nonzero(labels == k).flatten()
        # sequences with evidence first within each class
        idx = torch.cat([idx[has_mask[idx]], idx[~has_mask[idx]]]).tolist()
        groups.append(idx)
    return round_robin(groups, n)


def add_attention_analysis(
    section: "Section",
    result: AttentionFaithfulness,
    x: torch.Tensor,
    *,
    cases: Sequence[int],
    class_names: Sequence[str],
    masks: torch.Tensor | None = None,
    vocab: Sequence[str] | None = None,
    fs: float | None = None,
    channel_names: Sequence[str] | None = None,
    windows: Sequence[tuple[str, float]] | None = None,
) -> dict[str, bytes]:
    """Write numbers, verdict and examples of ``result`` into ``section``; return ``{file name: PNG bytes}``.

    ``x``: the ``(B, L)`` tokens or ``(B, C, L)`` signals ``result`` was computed on; ``cases``:
    rows of ``x`` to show; ``vocab``: the word of each token id (ids are shown as ``#id`` without it);
    ``windows``: each row's window of a record, ``(name, start s in the record)``.
    """
    from medlens.report.attention import attention_analysis

    summary = result.summary()
    return attention_analysis(
        section, result, x, summary=summary, verdict=verdict(summary), cases=cases, class_names=class_names,
        masks=masks, vocab=vocab, fs=fs, channel_names=channel_names, windows=windows,
    )


# ------------------------------------------------------------------------------------------------
# demo section
# ------------------------------------------------------------------------------------------------


def ecg_attention_model(
    out: Path, *, epochs: int, seed: int, progress: bool = False
) -> tuple[nn.Module, dict[str, Any], bool]:
    """The attention RNN on ECG5000, reused from ``out/models`` when its settings match."""
    from medlens.app.cache import cached_model
    from medlens.app.recipes import train_on_dataset

    return cached_model(
        out / "models" / f"{ECG_DATA}-attention-rnn-e{epochs}.pt",
        {"data": ECG_DATA, "arch": "attention-rnn", "attention": "additive", "epochs": epochs, "seed": seed},
        lambda: train_on_dataset(ECG_DATA, arch="attention-rnn", epochs=epochs, seed=seed, progress=progress),
    )


def attention_section(ctx: "DemoContext", report: "Report") -> None:
    """Demo section: a BiGRU with additive attention on ECG5000, and whether to trust its attention."""
    # The recurrent model is tiny: intra-op threads cannot speed up its 32-unit matrix products,
    # while on shared cores OpenMP oversubscription slows each of its thousands of small ops
    # tenfold. One thread for this section, restored afterwards.
    with torch_threads(1):
        _attention_section(ctx, report)


def _attention_section(ctx: "DemoContext", report: "Report") -> None:
    import time

    from medlens.data.datasets import load_ecg5000
    from medlens.evaluation.attention import attention_faithfulness

    start = time.perf_counter()
    epochs = 2 if ctx.quick else 12
    model, meta, reused = ecg_attention_model(ctx.out, epochs=epochs, seed=ctx.seed)
    test = load_ecg5000(split="test")
    n = 16 if ctx.quick else len(test)
    x, labels = test.inputs[:n], test.labels[:n]
    result = attention_faithfulness(
        model, x, labels=labels, n_permutations=20 if ctx.quick else 100, ig_steps=8 if ctx.quick else 32, seed=ctx.seed
    )
    sec = report.section("Attention on ECG5000")
    c = model.config
    sec.add_text(
        f"A bidirectional {c['cell'].upper()} ({c['hidden_size']} units per direction) with additive attention "
        f"(Bahdanau et al. 2015) over {c['downsample_layers']} strided convolution(s), trained on ECG5000 beats "
        f"(normal against abnormal; {epochs} epochs, seed {ctx.seed}, {'reused' if reused else 'trained now'}). "
        "Attention weights show where the network looked; the checks below, after Jain and Wallace, "
        "\"Attention is not Explanation\" (2019), say how far that can be read as why it decided."
    )
    sec.add_table(
        ["split", "accuracy", "AUROC"],
        [["validation", meta["val"]["accuracy"], meta["val"]["auroc"]],
         ["test (held out)", meta["test"]["accuracy"], meta["test"]["auroc"]]],
    )
    sec.add_text(f"The analysis below covers {n} held-out test beats.")
    add_attention_analysis(
        sec, result, x, cases=pick_examples(labels, None, 2 if ctx.quick else 4), class_names=list(test.class_names)
    )
    ctx.timings["attention:analysis"] = time.perf_counter() - start
