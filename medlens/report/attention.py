"""The attention report section: the Jain-Wallace numbers, the plain-language verdict and
example cases (signals with attention, gradient and IG strips; text highlighted by attention and
by token attributions). Takes a finished analysis; computes nothing.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from medlens.report.html import Section

__all__ = ["attention_analysis", "summary_rows"]


def summary_rows(summary: dict[str, Any]) -> list[list[Any]]:
    """The numbers of :meth:`AttentionFaithfulness.summary` as table rows (measure, value, reading)."""
    rows = [  # (measure, summary key, how to read it)
        ("Kendall tau: attention vs gradient importance (mean)", "tau_gradient_mean",
         "1 = same ranking, 0 = unrelated"),
        ("Kendall tau: attention vs leave-one-out importance (mean)", "tau_leave_one_out_mean",
         "J&W: mostly below 0.5 for BiLSTMs"),
        ("Kendall tau: attention vs |integrated gradients| (mean)", "tau_integrated_gradients_mean", ""),
        ("Permutation: median output change (TVD)", "permutation_tvd_median",
         "0 = shuffling attention changes nothing"),
        ("Permutation: share of sequences changed by < 0.05 TVD", "permutation_small_change_share", ""),
        ("Permutation: share of shuffles that flip the decision", "permutation_flip_rate", ""),
        ("Largest attention weight (mean)", "max_attention_mean", "1 = all weight on one step"),
        ("Attention spread (effective steps / steps)", "attention_spread_mean", "1 = uniform"),
        ("Attention mass inside the ground-truth mask", "mass_attention_mean",
         f"{summary.get('n_with_mask', 0)} sequences with a mask"),
        ("|gradient| mass inside the mask", "mass_gradient_mean", ""),
        ("|integrated gradients| mass inside the mask", "mass_integrated_gradients_mean", ""),
        ("Share of positions the mask covers (uniform attention's mass)", "mask_share_mean", ""),
    ]
    return [[name, summary[key], note] for name, key, note in rows if summary.get(key) is not None]


def _caption(result: Any, i: int, class_names: Sequence[str]) -> str:
    p = result.probabilities[i]
    pred = int(p.argmax())

    def name(k: int) -> str:
        return class_names[k] if 0 <= k < len(class_names) else str(k)

    label = f"label {name(int(result.labels[i]))}, " if result.labels is not None else ""
    tvd = float(result.permutation_tvd[i].median())
    tau = float(result.tau_gradient[i])
    return (
        f"sequence #{i}: {label}predicted {name(pred)} (p={float(p[pred]):.2f}); "
        f"tau(attention, gradient)={tau:.2f}, median permutation TVD={tvd:.3f}"
    )


def attention_analysis(
    section: Section,
    result: Any,
    x: torch.Tensor,
    *,
    summary: dict[str, Any],
    verdict: tuple[str, Sequence[str]],
    cases: Sequence[int],
    class_names: Sequence[str],
    masks: torch.Tensor | None = None,
    vocab: Sequence[str] | None = None,
    fs: float | None = None,
    channel_names: Sequence[str] | None = None,
    windows: Sequence[tuple[str, float]] | None = None,
) -> dict[str, bytes]:
    """Write numbers, verdict and examples into ``section``; return ``{file name: PNG bytes}``, each
    example's file named by its row as its caption names it (``sequence7.png`` for "sequence #7").

    Parameters
    ----------
    result : AttentionFaithfulness
        The analysis of the sequences ``x`` (:func:`medlens.evaluation.attention.attention_faithfulness`).
    summary : dict
        ``result.summary()``.
    verdict : (level, sentences)
        :func:`medlens.evaluation.attention.verdict` of ``summary``.
    x : torch.Tensor
        ``(B, L)`` tokens or ``(B, C, L)`` signals, the inputs ``result`` was computed on.
    cases : sequence of int
        Rows of ``x`` to show.
    vocab : sequence of str, optional
        Word of each token id (tokens only); ids are shown as ``#id`` without it.
    windows : sequence of (str, float), optional
        Signals cut from records: each row's window name and its first sample's time in its record
        (s), so a figure names its window and its time axis is the record's.
    """
    from medlens.viz import figure_png
    from medlens.viz.colours import SIGNED_WORDS
    from medlens.viz.signals import signal_strips_figure
    from medlens.viz.text import highlighted_html, text_figure

    level, sentences = verdict
    section.add_heading("How far can attention be trusted here? (Jain and Wallace 2019)")
    section.add_table(["measure", "value", "reading"], summary_rows(summary))
    kind = {"usable": "verdict-good", "caution": "note", "unreliable": "verdict-bad"}[level]
    for sentence in sentences[:-1]:
        section.add_text(sentence)
    section.add_text(sentences[-1], kind=kind)
    pngs: dict[str, bytes] = {}
    tokens = not x.is_floating_point()
    ig_name = "integrated gradients" if result.integrated_gradients is not None else None
    grad_name = "gradient x input" if result.gradient_method == "grad_x_input" else "|gradient|"
    section.add_heading("Examples")
    if tokens:
        section.add_text(
            "Each word's background shows its weight (darker = more); orange marks evidence for the predicted class, "
            "purple evidence against it"
            + ("; the ground-truth rationale is bold and underlined." if masks is not None else ".")
        )
    else:
        shaded = masks is not None and any(bool((masks[i].reshape(-1) > 0.5).any()) for i in cases)
        section.add_text(
            "Under each signal: the attention weights mapped to time, the gradient magnitude and integrated gradients "
            f"({SIGNED_WORDS} the predicted class)"
            + ("; the ground-truth evidence is shaded green." if shaded else
               "; this data set marks no ground-truth evidence, so none is shaded.")
        )
    images = []
    for i in cases:
        caption = _caption(result, i, class_names)
        mask_i = None if masks is None else masks[i].reshape(-1)
        if tokens:
            length = int(result.step_mask[i].sum())  # tokens: one step per token
            ids = x[i, :length].tolist()
            words = [vocab[t] if vocab is not None and 0 <= t < len(vocab) else f"#{t}" for t in ids]
            rationale = None if mask_i is None else mask_i[:length]
            section.add_heading(caption)
            maps = [("attention", result.attention[i, :length]), (grad_name, result.gradient[i, :length])]
            if ig_name:
                maps.append((ig_name, result.integrated_gradients[i, :length]))
            for name, values in maps:
                section.add_trusted_html(highlighted_html(words, values, rationale=rationale, title=name))
                pngs[f"sequence{i}_{name.replace(' ', '_').replace('|', '')}.png"] = figure_png(
                    text_figure(words, values, rationale=rationale, title=f"{name} - {caption}")
                )
        else:
            strips = [("attention", result.attention[i]), (grad_name, result.gradient[i])]
            if ig_name:
                strips.append(("IG", result.integrated_gradients[i]))
            start = None
            if windows is not None:
                name, start = windows[i]
                caption = f"window {name} (from {start:.3f} s in its record) - {caption}"
            png = figure_png(signal_strips_figure(x[i], strips, mask=mask_i, fs=fs, channel_names=channel_names,
                                                  title=caption, start=start))
            pngs[f"sequence{i}.png"] = png  # named by the row its caption gives ("sequence #7")
            images.append((png, caption))
    if images:
        section.add_images(images)
    return pngs
