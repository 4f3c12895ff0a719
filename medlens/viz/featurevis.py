"""Pictures of feature visualisations: a grid per layer (2D), small multiples of signals (1D),
slice grids (3D), and the objective's rise over the optimisation steps."""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from medlens.core.numbering import slice_words  # noqa: E402


def _display(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """One image ``(C, H, W)`` as something imshow draws: grey for 1 channel, RGB for 3, else the mean."""
    if image.shape[0] == 3:
        return np.moveaxis(image, 0, -1), None
    return image.mean(0), "gray"


def feature_grid(
    images: torch.Tensor,
    labels: Sequence[str] | None = None,
    title: str = "",
    *,
    input_range: tuple[float, float] = (0.0, 1.0),
    n_cols: int = 8,
    n_slices: int = 5,
) -> "plt.Figure":
    """A figure with one panel per optimised input.

    Parameters
    ----------
    images : torch.Tensor
        ``(N, C, *spatial)``: the output of :func:`medlens.featurevis.render`.
    labels : sequence of str, optional
        One caption per image (e.g. ``"ch 3"``); the index by default.
    input_range : (float, float)
        Fixed intensity scale, so panels are comparable (no per-panel stretching).
    n_cols : int
        Panels per row for 2D images and 1D signals.
    n_slices : int
        For 3D volumes: evenly spaced axial slices shown per input (one row per input).

    1D signals are drawn as small multiples of line plots (one line per channel), 2D images as
    a grid (grey for one channel, RGB for three, the channel mean otherwise), 3D volumes as one
    row of axial slices per input.
    """
    arr = images.detach().float().cpu().numpy()
    n, rank = arr.shape[0], arr.ndim - 2
    labels = list(labels) if labels is not None else [str(i) for i in range(n)]
    lo, hi = (float(v) for v in input_range)
    if rank == 3:
        depth = arr.shape[2]
        chosen = np.unique(np.linspace(0, depth - 1, min(n_slices, depth)).round().astype(int))
        fig, axes = plt.subplots(n, len(chosen), figsize=(1.3 * len(chosen), 1.3 * n + 0.4), squeeze=False)
        for i in range(n):
            for j, z in enumerate(chosen):
                img, cmap = _display(arr[i][:, z])
                axes[i, j].imshow(img, cmap=cmap, vmin=lo, vmax=hi)
                axes[i, j].set_xticks([])
                axes[i, j].set_yticks([])
                if i == 0:
                    axes[i, j].set_title(slice_words(z, depth), fontsize=7)
            axes[i, 0].set_ylabel(labels[i], fontsize=7)
        fig.suptitle(title, fontsize=9, y=1.02)
        return fig
    cols = max(1, min(n_cols, n))
    rows = -(-n // cols)
    # widen the panels for long captions (about 0.055 inch per character at 7 pt)
    longest = max((len(line) for lab in labels for line in lab.splitlines()), default=0)
    lines = max((len(lab.splitlines()) for lab in labels), default=1)
    width = max(1.1 if rank == 2 else 2.0, 0.055 * longest + 0.1)
    size = (width, (1.1 if rank == 2 else 1.0) + 0.12 * (lines - 1))
    fig, axes = plt.subplots(rows, cols, figsize=(size[0] * cols, size[1] * rows + 0.4), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if k >= n:
            ax.set_axis_off()
            continue
        if rank == 2:
            img, cmap = _display(arr[k])
            ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
        else:
            for signal in arr[k]:
                ax.plot(signal, lw=0.8)
            ax.set_ylim(lo, hi)
        ax.set_title(labels[k], fontsize=7)
    fig.suptitle(title, fontsize=9, y=1.02)
    return fig


def objective_curves(values: torch.Tensor, labels: Sequence[str] | None = None, title: str = "") -> "plt.Figure":
    """The objective of each image over the optimisation steps, ``values`` ``(steps, N)``."""
    arr = values.detach().double().cpu().numpy()
    fig, ax = plt.subplots(figsize=(4.5, 2.6))
    for i in range(arr.shape[1]):
        ax.plot(np.arange(1, len(arr) + 1), arr[:, i], lw=0.8, label=None if labels is None else labels[i])
    ax.set_xlabel("step")
    ax.set_ylabel("objective")
    if labels is not None and len(labels) <= 8:
        ax.legend(fontsize=6)
    ax.set_title(title, fontsize=9)
    return fig


def _panel(ax, arr: np.ndarray, *, cmap: str | None, vmin: float, vmax: float) -> None:
    """One input ``(C, *spatial)`` or map in a panel: 1D as lines, 2D as an image, 3D as its
    middle axial slice."""
    ax.set_xticks([])
    ax.set_yticks([])
    if arr.ndim == 2:  # (C, L)
        for signal in arr:
            ax.plot(signal, lw=0.7, color=None if cmap is None or cmap == "gray" else "k")
        ax.set_ylim(vmin, vmax)
        return
    if arr.ndim == 4:  # (C, D, H, W)
        arr = arr[:, arr.shape[1] // 2]
    img, grey = _display(arr)
    ax.imshow(img, cmap=cmap or grey, vmin=vmin, vmax=vmax)


def reference_rows(
    images: torch.Tensor,
    labels: Sequence[str],
    cases: Sequence[torch.Tensor],
    maps: Sequence[torch.Tensor],
    captions: Sequence[Sequence[str]],
    title: str = "",
    *,
    input_range: tuple[float, float] = (0.0, 1.0),
) -> plt.Figure:
    """Activation maximisation beside relevance maximisation: one row per channel with its
    rendered input, then its reference cases, each followed by its conditional relevance map.

    Parameters
    ----------
    images : torch.Tensor
        ``(N, C, *spatial)`` rendered inputs, one per channel.
    labels : sequence of str
        One per row (``"ch 3"``).
    cases, maps : sequence of torch.Tensor
        Per row, ``(k, C, *spatial)`` reference cases and their conditional maps.
    captions : sequence of sequences of str
        Per row, one caption per reference case (its row in the data and its relevance).

    Maps are red where the concept's relevance is positive, blue where negative, on a scale
    symmetric about zero per map (their sums differ from case to case; the caption gives it).
    3D inputs show their middle axial slice.
    """
    n = len(labels)
    k = max((len(c) for c in cases), default=0)
    lo, hi = (float(v) for v in input_range)
    fig, axes = plt.subplots(n, 1 + 2 * k, figsize=(1.15 * (1 + 2 * k), 1.25 * n + 0.5), squeeze=False)
    for i in range(n):
        _panel(axes[i, 0], images[i].detach().float().cpu().numpy(), cmap=None, vmin=lo, vmax=hi)
        axes[i, 0].set_ylabel(labels[i], fontsize=7)
        if i == 0:
            axes[i, 0].set_title("rendered", fontsize=7)
        for j in range(k):
            case_ax, map_ax = axes[i, 1 + 2 * j], axes[i, 2 + 2 * j]
            if j >= len(cases[i]):
                case_ax.set_axis_off()
                map_ax.set_axis_off()
                continue
            _panel(case_ax, cases[i][j].detach().float().cpu().numpy(), cmap=None, vmin=lo, vmax=hi)
            m = maps[i][j].detach().float().cpu().numpy().sum(0, keepdims=True)
            scale = float(np.abs(m).max()) or 1.0
            _panel(map_ax, m, cmap="bwr", vmin=-scale, vmax=scale)
            case_ax.set_title(captions[i][j], fontsize=6)
            if i == 0:
                map_ax.set_title("its relevance", fontsize=6)
    fig.suptitle(title, fontsize=9, y=1.0)
    return fig
