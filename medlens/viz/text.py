"""Text with every token highlighted by a weight: attention or a token attribution.

As in the reference document's Figure 9 (attention visualisation after Galassi et al. 2019):
each word's background shows its weight, and the human rationale (the ground-truth evidence)
is set in bold. Two renderings of the same thing: HTML for the report (built only from
parts passed through ``html.escape``, so it is safe for
:meth:`medlens.report.html.Section.add_trusted_html`)
and a matplotlib figure for PNG files.
"""

from __future__ import annotations

import html
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from medlens.viz.colours import NEGATIVE_RGB as _NEGATIVE  # noqa: E402 - evidence against the class
from medlens.viz.colours import POSITIVE_RGB as _POSITIVE  # noqa: E402 - weight / evidence for the class


def _weights(words: Sequence[str], weights: torch.Tensor | Sequence[float]) -> np.ndarray:
    w = weights.detach().double().cpu().numpy() if isinstance(weights, torch.Tensor) else np.asarray(weights, float)
    w = w.reshape(-1)[: len(words)]
    if len(w) < len(words):
        raise ValueError(f"{len(words)} words but only {len(w)} weights")
    return w


def _colours(w: np.ndarray) -> list[tuple[tuple[int, int, int], float]]:
    """(rgb, opacity) per word: opacity = |w| / max |w| (signed weights pick orange or purple)."""
    top = float(np.abs(w).max()) if w.size else 0.0
    out = []
    for v in w:
        alpha = abs(float(v)) / top if top > 0 else 0.0
        out.append((_POSITIVE if v >= 0 else _NEGATIVE, alpha))
    return out


def highlighted_html(
    words: Sequence[str],
    weights: torch.Tensor | Sequence[float],
    *,
    rationale: torch.Tensor | Sequence[float] | None = None,
    title: str | None = None,
) -> str:
    """HTML of ``words`` each highlighted by its weight.

    Parameters
    ----------
    words : sequence of str
        The tokens, in order (padding already removed).
    weights : tensor or sequence of float
        ``(len(words),)`` (longer inputs are cut): attention weights (non-negative) or a signed
        attribution. Opacity is ``|w| / max |w|``; orange marks positive, purple negative values.
    rationale : tensor or sequence, optional
        ``(len(words),)`` ground-truth mask; those words are set in bold and underlined.
    title : str, optional
        A caption above the text.

    Returns
    -------
    str
        A ``<div>``; every word, value and title is escaped.
    """
    w = _weights(words, weights)
    marks = None if rationale is None else _weights(words, rationale) > 0.5
    spans = []
    for i, (word, ((r, g, b), alpha)) in enumerate(zip(words, _colours(w))):
        style = f"background:rgba({r},{g},{b},{alpha:.3f});padding:1px 2px;border-radius:3px"
        if alpha > 0.6:
            style += ";color:#fff"
        if marks is not None and marks[i]:
            style += ";font-weight:700;text-decoration:underline"
        spans.append(f'<span style="{style}" title="{html.escape(f"{w[i]:.4f}")}">{html.escape(str(word))}</span>')
    caption = f'<div style="font-size:12px;color:#444;margin-bottom:4px">{html.escape(title)}</div>' if title else ""
    return (
        '<div style="font-family:Georgia,serif;font-size:14px;line-height:1.9;max-width:820px;'
        'border:1px solid #e3e7ec;border-radius:4px;padding:6px 8px;margin:6px 0;background:#fff">'
        f'{caption}{" ".join(spans)}</div>'
    )


def text_figure(
    words: Sequence[str],
    weights: torch.Tensor | Sequence[float],
    *,
    rationale: torch.Tensor | Sequence[float] | None = None,
    title: str = "",
    chars_per_line: int = 90,
) -> "plt.Figure":
    """The same highlighting as :func:`highlighted_html`, as a figure (for PNG files).

    Words are laid out in a monospace font, wrapped at ``chars_per_line`` characters.
    """
    w = _weights(words, weights)
    marks = None if rationale is None else _weights(words, rationale) > 0.5
    lines: list[list[int]] = [[]]
    used = 0
    for i, word in enumerate(words):
        if lines[-1] and used + len(word) + 1 > chars_per_line:
            lines.append([])
            used = 0
        lines[-1].append(i)
        used += len(word) + 1
    height = 0.35 * len(lines) + (0.45 if title else 0.15)
    fig = plt.figure(figsize=(chars_per_line * 0.085, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, chars_per_line)
    ax.set_ylim(len(lines) + (1.2 if title else 0.4), 0)
    ax.set_axis_off()
    colours = _colours(w)
    for row, idx in enumerate(lines):
        x = 0.5
        for i in idx:
            (r, g, b), alpha = colours[i]
            bold = marks is not None and marks[i]
            ax.text(
                x, row + (1.2 if title else 0.6), words[i], family="monospace", fontsize=10, va="center",
                weight="bold" if bold else "normal", color="white" if alpha > 0.6 else "black",
                bbox={"boxstyle": "round,pad=0.15", "fc": (r / 255, g / 255, b / 255, alpha), "ec": "none"},
            )
            if bold:
                ax.plot([x, x + len(words[i]) * 0.98], [row + (1.55 if title else 0.95)] * 2, color="black", lw=0.8)
            x += len(words[i]) + 1
    if title:
        ax.text(0.5, 0.35, title, fontsize=9, va="center")
    return fig
