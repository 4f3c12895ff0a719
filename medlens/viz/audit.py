"""Pictures of a cohort audit: cluster mean maps, the Laplacian spectrum, the 2D embedding, and a
text audit's tokens.

They take plain tensors (the audit's results), never compute anything from a model.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

__all__ = ["cluster_maps_figure", "embedding_figure", "spectrum_figure", "token_bars_figure"]


def _as_image(mean_map: torch.Tensor) -> np.ndarray:
    """A summary grid as something to show: 1D as a strip, 2D as is, 3D as a max projection."""
    a = mean_map.detach().float().cpu().numpy()
    if a.ndim == 1:
        return a[None, :]
    if a.ndim == 3:
        return a.max(axis=0)  # projection along depth: where in the plane the cluster looks
    return a


def cluster_maps_figure(mean_maps: Sequence[torch.Tensor], titles: Sequence[str], flagged: Sequence[bool]) -> "plt.Figure":
    """One panel per cluster: its mean relevance distribution over the summary grid.

    Flagged clusters get a red frame. Colour scales are per panel (each map sums to one).
    """
    n = max(1, len(mean_maps))
    cols = min(n, 6)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.3 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, m, title, flag in zip(axes.ravel(), mean_maps, titles, flagged):
        ax.axis("on")
        ax.imshow(_as_image(m), cmap="inferno", interpolation="nearest", aspect="auto")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(title, fontsize=8, color="#c62828" if flag else "black")
        for spine in ax.spines.values():
            spine.set_edgecolor("#c62828" if flag else "#888888")
            spine.set_linewidth(3 if flag else 1)
    fig.tight_layout()
    return fig


def spectrum_figure(eigenvalues: torch.Tensor, chosen: int, title: str = "") -> "plt.Figure":
    """The smallest eigenvalues of the normalised Laplacian; the chosen eigengap is marked."""
    lam = eigenvalues.detach().double().cpu().numpy()
    fig, ax = plt.subplots(figsize=(3.6, 2.6))
    ks = np.arange(1, len(lam) + 1)
    ax.plot(ks, lam, "o-", color="#12355b")
    if 1 <= chosen < len(lam):
        ax.axvspan(chosen + 0.05, chosen + 0.95, color="#f0b400", alpha=0.3, label=f"eigengap: {chosen} cluster(s)")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_xlabel("index", fontsize=8)
    ax.set_ylabel("eigenvalue", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def embedding_figure(embedding: torch.Tensor, labels: torch.Tensor, flagged: Sequence[bool], title: str = "") -> "plt.Figure":
    """Cases in the spectral embedding, coloured by cluster; flagged clusters drawn as crosses."""
    e = embedding.detach().double().cpu().numpy()
    lab = labels.detach().cpu().numpy()
    fig, ax = plt.subplots(figsize=(3.8, 3.2))
    cmap = plt.get_cmap("tab10")
    for c in range(int(lab.max()) + 1 if len(lab) else 0):
        pts = e[lab == c]
        flag = c < len(flagged) and flagged[c]
        ax.scatter(pts[:, 0], pts[:, 1], s=14 if flag else 9, marker="x" if flag else "o", color=cmap(c % 10),
                   label=f"cluster {c}" + (" (flagged)" if flag else ""))
    ax.legend(fontsize=6, loc="best")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


VERDICT_COLOURS = {"depended on": "#c62828", "small effect": "#e57373", "not depended on": "#2e7d32",
                   "undecided": "#f0b400", "": "#9aa5b1"}


def token_bars_figure(tokens: Sequence[str], values: Sequence[float], verdicts: Sequence[str],
                      title: str = "") -> plt.Figure:
    """A class's tokens as horizontal bars of their relevance, the first at the top, coloured by
    the verdict of their deletion test (grey: not tested)."""
    n = max(1, len(tokens))
    fig, ax = plt.subplots(figsize=(4.6, 0.8 + 0.24 * n))
    y = np.arange(len(tokens))[::-1]
    ax.barh(y, list(values), color=[VERDICT_COLOURS.get(v, VERDICT_COLOURS[""]) for v in verdicts])
    ax.set_yticks(y)
    ax.set_yticklabels(list(tokens), fontsize=8)
    ax.axvline(0, color="#444444", linewidth=0.6)
    ax.set_xlabel("relevance (sum of each note's share)", fontsize=8)
    ax.tick_params(axis="x", labelsize=7)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for v, c in VERDICT_COLOURS.items() if v in set(verdicts)]
    labels = [v or "not tested" for v in VERDICT_COLOURS if v in set(verdicts)]
    if handles:
        ax.legend(handles, labels, fontsize=6, loc="lower right")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
