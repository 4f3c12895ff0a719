"""A signal (ECG, EEG) with strips of attention and attributions underneath, on one time axis."""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from medlens.viz.colours import SIGNED_CMAP, map_limits  # noqa: E402


def _array(values: torch.Tensor | np.ndarray) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().double().cpu().numpy()
    return np.asarray(values, dtype=float)


def _spans(mask: np.ndarray) -> list[tuple[int, int]]:
    """Runs of True as ``(start, stop)``."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[::2], edges[1::2]))


#: Leads drawn at full height; a record with more (an EEG of 19 to 256 channels) shares their height
#: among all its leads, down to a floor, so its figure stays a page or a few, not metres of PNG.
FULL_HEIGHT_LEADS = 12


def _lead_height(c: int, full: float, least: float) -> float:
    """Inches per lead: ``full`` up to :data:`FULL_HEIGHT_LEADS` leads, then shared, at least ``least``."""
    return full if c <= FULL_HEIGHT_LEADS else max(least, full * FULL_HEIGHT_LEADS / c)


def signal_strips_figure(
    signal: torch.Tensor,
    strips: Sequence[tuple[str, torch.Tensor]],
    *,
    mask: torch.Tensor | None = None,
    title: str = "",
    fs: float | None = None,
    channel_names: Sequence[str] | None = None,
    start: float | None = None,
) -> "plt.Figure":
    """Plot a multichannel signal above one colour strip per explanation.

    Parameters
    ----------
    signal : torch.Tensor
        ``(C, L)`` (or ``(L,)``). Channels are stacked with an offset.
    strips : sequence of (name, values)
        Each ``values`` ``(L,)``: attention (non-negative) or a signed attribution (symmetric
        around zero), coloured as :mod:`medlens.viz.colours` says.
    mask : torch.Tensor, optional
        ``(L,)`` or ``(1, L)`` ground-truth evidence, shaded green on the signal and outlined on
        every strip.
    title : str
    fs : float, optional
        Sampling rate; the time axis is in seconds when given, in samples otherwise.
    channel_names : sequence of str, optional
    start : float, optional
        Time (s, with ``fs``) in its record of the signal's first sample: the axis is then the
        record's time, labelled so.
    """
    sig = _array(signal)
    if sig.ndim == 1:
        sig = sig[None]
    c, length = sig.shape
    scale = fs if fs else 1.0
    t0 = float(start) if start is not None and fs else 0.0
    t = t0 + np.arange(length) / scale
    spans = _spans(_array(mask).reshape(-1)[:length] > 0.5) if mask is not None else []
    fig, axes = plt.subplots(
        1 + len(strips), 1, figsize=(7.5, 1.0 + _lead_height(c, 0.9, 0.2) * c + 0.45 * len(strips)), sharex=True, squeeze=False,
        gridspec_kw={"height_ratios": [max(2, 1.2 * c)] + [0.45] * len(strips)},
    )
    ax = axes[0, 0]
    spread = np.nanmax(np.abs(sig - sig.mean(1, keepdims=True))) or 1.0
    for k in range(c):
        offset = -2.2 * spread * k
        ax.plot(t, sig[k] - sig[k].mean() + offset, color="black", lw=0.7)
    if channel_names is not None and c > 1:
        ax.set_yticks([-2.2 * spread * k for k in range(c)], list(channel_names)[:c], fontsize=7)
    else:
        ax.set_yticks([])
    for a, b in spans:
        ax.axvspan(t0 + a / scale, t0 + b / scale, color="#2e7d32", alpha=0.15, lw=0)
    ax.set_title(title, fontsize=9)
    for j, (name, values) in enumerate(strips):
        strip = axes[j + 1, 0]
        v = _array(values).reshape(-1)[:length]
        cmap, vmin, vmax, _signed = map_limits(v)
        strip.imshow(v[None], aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, extent=(t0, t0 + length / scale, 0, 1),
                     interpolation="nearest")
        for a, b in spans:
            strip.axvspan(t0 + a / scale, t0 + b / scale, fill=False, ec="#2e7d32", lw=1.0)
        strip.set_yticks([0.5], [name], fontsize=7)
    axes[-1, 0].set_xlabel(("time in the record (s)" if start is not None else "time (s)") if fs else "time (samples)")
    fig.tight_layout(h_pad=0.2)
    return fig


def signal_attribution_figure(
    values: torch.Tensor | np.ndarray,
    attribution: torch.Tensor | np.ndarray,
    fs: float,
    channels: Sequence[str],
    annotations: Sequence[tuple[int, str]] = (),
    *,
    units: Sequence[str] = (),
    span: tuple[int, int] | None = None,
    seen: Sequence[int] | None = None,
    margin_s: float = 1.0,
    title: str = "",
) -> "plt.Figure":
    """Each lead of a signal on its own time axis (seconds) with its attribution and annotations.

    Beyond :data:`FULL_HEIGHT_LEADS` leads (an EEG) all leads share one axis instead, each in its own
    band over its attribution (see :func:`_stacked_attribution_figure`): one matplotlib axis per lead
    took 9 to 17 s to draw 64 leads.

    Parameters
    ----------
    values : (C, L) array
        The signal in physical units.
    attribution : (C, L) array
        The map on the same time axis (zero where the model did not look).
    fs : float
        Sampling rate in Hz.
    channels : sequence of str
        Lead names.
    annotations : sequence of (sample, symbol)
        Drawn as labelled vertical ticks (WFDB beat symbols, EDF+ events).
    span : (int, int), optional
        Samples the model saw; the plot shows them with ``margin_s`` seconds either side.
    seen : sequence of int, optional
        The leads the model saw (shaded over ``span``); default all.
    """
    sig, att = _array(values), _array(attribution)
    c, n = sig.shape
    lo, hi = (0, n) if span is None else (max(0, span[0] - int(margin_s * fs)), min(n, span[1] + int(margin_s * fs)))
    if c > FULL_HEIGHT_LEADS:
        return _stacked_attribution_figure(sig, att, fs, channels, annotations, units=units, window=(lo, hi),
                                           span=span, seen=seen, title=title)
    t = np.arange(lo, hi) / fs
    fig, axes = plt.subplots(2 * c, 1, figsize=(9, _lead_height(c, 1.9, 0.45) * c + 0.4), sharex=True, squeeze=False,
                             gridspec_kw={"height_ratios": [3, 1] * c})
    m = float(np.abs(att[:, lo:hi]).max()) or 1.0
    for k in range(c):
        ax, strip = axes[2 * k, 0], axes[2 * k + 1, 0]
        ax.plot(t, sig[k, lo:hi], color="black", lw=0.7)
        unit = f" ({units[k]})" if k < len(units) and units[k] else ""
        name = f"{channels[k] if k < len(channels) else k}{unit}"
        if c > FULL_HEIGHT_LEADS:  # a short axis: the name across, the scale in small print
            ax.set_ylabel(name, fontsize=7, rotation=0, ha="right", va="center")
            ax.tick_params(axis="y", labelsize=5)
        else:
            ax.set_ylabel(name, fontsize=8)
        top = float(np.max(sig[k, lo:hi])) if hi > lo else 0.0
        for sample, symbol in annotations:
            if lo <= sample < hi:
                ax.axvline(sample / fs, color="tab:blue", lw=0.5, alpha=0.5)
                ax.text(sample / fs, top, str(symbol), fontsize=7, color="tab:blue", ha="center", va="bottom")
        if span is not None and (seen is None or k in seen):
            ax.axvspan(span[0] / fs, span[1] / fs, color="tab:orange", alpha=0.06)
        strip.imshow(att[k : k + 1, lo:hi], aspect="auto", cmap=SIGNED_CMAP, vmin=-m, vmax=m,
                     extent=(lo / fs, hi / fs, 0, 1), interpolation="nearest")
        strip.set_yticks([])
    axes[-1, 0].set_xlabel("time (s)")
    axes[0, 0].set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def _lead_label(channels: Sequence[str], units: Sequence[str], k: int) -> str:
    unit = f" ({units[k]})" if k < len(units) and units[k] else ""
    return f"{channels[k] if k < len(channels) else k}{unit}"


def _stacked_attribution_figure(
    sig: np.ndarray,
    att: np.ndarray,
    fs: float,
    channels: Sequence[str],
    annotations: Sequence[tuple[int, str]],
    *,
    units: Sequence[str],
    window: tuple[int, int],
    span: tuple[int, int] | None,
    seen: Sequence[int] | None,
    title: str,
) -> "plt.Figure":
    """All leads on one axis, lead ``k`` centred at ``y = -k`` and scaled to its band (its own
    amplitude, as a per-lead axis would), over a band of its attribution coloured as one colour scale
    for all leads; the leads the model saw are outlined over ``span``; annotations drawn once."""
    from matplotlib.collections import LineCollection
    from matplotlib.patches import Rectangle

    c = sig.shape[0]
    lo, hi = window
    t = np.arange(lo, hi) / fs
    part = sig[:, lo:hi]
    centred = part - np.nanmedian(part, axis=1, keepdims=True) if hi > lo else part
    reach = np.nanmax(np.abs(centred), axis=1, keepdims=True) if hi > lo else np.ones((c, 1))
    reach[~(reach > 0)] = 1.0
    y = 0.45 * centred / reach - np.arange(c)[:, None]
    fig, ax = plt.subplots(figsize=(9, _lead_height(c, 1.9, 0.45) * c * 0.5 + 0.8))
    m = float(np.abs(att[:, lo:hi]).max()) if hi > lo else 0.0
    m = m or 1.0
    ax.imshow(att[:, lo:hi], aspect="auto", cmap=SIGNED_CMAP, vmin=-m, vmax=m, interpolation="nearest",
              extent=(lo / fs, hi / fs, -c + 0.5, 0.5), alpha=0.8)
    ax.add_collection(LineCollection([np.column_stack([t, y[k]]) for k in range(c)], colors="black", linewidths=0.5))
    if span is not None:
        for k in range(c) if seen is None else [k for k in seen if 0 <= k < c]:
            ax.add_patch(Rectangle((span[0] / fs, -k - 0.5), (span[1] - span[0]) / fs, 1.0,
                                   fill=False, ec="0.35", lw=0.5))
    for sample, symbol in annotations:
        if lo <= sample < hi:
            ax.axvline(sample / fs, color="tab:blue", lw=0.5, alpha=0.5)
            ax.text(sample / fs, 0.55, str(symbol), fontsize=7, color="tab:blue", ha="center", va="bottom")
    ax.set_xlim(lo / fs, hi / fs if hi > lo else lo / fs + 1.0)
    ax.set_ylim(-c + 0.5, 1.2)
    ax.set_yticks(-np.arange(c), [_lead_label(channels, units, k) for k in range(c)], fontsize=6)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("each lead scaled to its band", fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig
