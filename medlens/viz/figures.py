"""Overlays of an attribution on its input, for 1D signals, 2D slices and 3D volumes."""

from __future__ import annotations

import io
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from medlens.core.numbering import slice_words  # noqa: E402
from medlens.data.formats.orientation import panels  # noqa: E402
from medlens.viz.colours import add_colourbar, map_colours, map_limits  # noqa: E402


def figure_png(fig: "plt.Figure", dpi: int = 100) -> bytes:
    """Render a figure to PNG bytes and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def heat_map(values: torch.Tensor) -> np.ndarray:
    """Collapse channels of one attribution ``(C, *spatial)`` into a ``(*spatial)`` map.

    Signed maps keep their sign (channel sum); the caller picks a diverging colour map.
    """
    return values.detach().float().sum(0).cpu().numpy()


def _limits(heat: np.ndarray) -> tuple[str, float, float]:
    cmap, vmin, vmax, _signed = map_limits(heat)
    return cmap, vmin, vmax


def peak_planes(heat: np.ndarray) -> tuple[int, int, int]:
    """The voxel ``(z, y, x)`` of a ``(D, H, W)`` map's largest magnitude: the three planes shown."""
    return tuple(int(i) for i in np.unravel_index(int(np.abs(np.nan_to_num(heat)).argmax()), heat.shape))


def _signal_panel(img: np.ndarray, heat: np.ndarray, title: str, fs: float | None,
                  annotations: Sequence[tuple[float, str]]) -> "plt.Figure":
    scale = fs or 1.0
    t = np.arange(len(img)) / scale
    fig, (ax, strip) = plt.subplots(2, 1, figsize=(6.4, 2.6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    ax.plot(t, img, color="black", lw=1)
    ax.set_ylabel("signal")
    top = float(np.max(img)) if len(img) else 0.0
    for at, label in annotations:
        if 0 <= at < len(img):
            ax.axvline(at / scale, color="0.4", lw=0.5, ls=":")
            ax.text(at / scale, top, str(label), fontsize=7, color="0.25", ha="center", va="bottom")
    cmap, vmin, vmax = _limits(heat)
    shown = strip.imshow(heat[None, :], aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax,
                         extent=(0, len(heat) / scale, 0, 1), interpolation="nearest")
    strip.set_yticks([])
    strip.set_xlabel("time (s)" if fs else "time (samples; sampling rate unknown)")
    fig.colorbar(shown, ax=[ax, strip], fraction=0.03, pad=0.01).ax.tick_params(labelsize=6)
    ax.set_title(title, fontsize=9)
    return fig


def attribution_figure(
    image: torch.Tensor, values: torch.Tensor, title: str = "", *, fs: float | None = None,
    annotations: Sequence[tuple[float, str]] = (), spacing: Sequence[float] | None = None,
    planes: Sequence[str] | None = None, affine: Sequence[Sequence[float]] | None = None,
    grey: tuple[float, float] | None = None,
) -> "plt.Figure":
    """A figure showing ``values`` over ``image``, with a colour bar (:mod:`medlens.viz.colours`).

    A 2D image is shown beside the overlay; the overlay is transparent where the map is near
    zero. A volume is shown as the viewer shows it: its three orthogonal planes (axial, coronal,
    sagittal) through the map's peak, each at the volume's full resolution. A signal is drawn
    over its map's strip, in seconds when ``fs`` is known, with ``annotations`` ``(sample, label)``.

    Parameters
    ----------
    image : torch.Tensor
        One input ``(C, *spatial)`` with 1 to 3 spatial dims.
    values : torch.Tensor
        Its attribution ``(C', *spatial)`` at the same spatial size.
    spacing : sequence of float, optional
        Voxel or pixel spacing (``(D, H, W)`` / ``(H, W)``) for the aspect ratio.
    planes : sequence of str, optional
        A volume's plane names, the plane a slice through each axis shows
        (:attr:`~medlens.data.formats.common.Volume.plane_names`; default axial, coronal,
        sagittal: a DICOM series' order).
    affine : 4 x 4 sequence of float, optional
        A volume's map from stored indices to RAS millimetres (:attr:`Volume.affine`): its
        planes are then named from it and drawn as a radiologist reads them
        (:mod:`medlens.data.formats.orientation`); each panel's title counts its slice from 1, as the report's viewer does (:mod:`medlens.core.numbering`).
    grey : (low, high), optional
        The values drawn black and white (a CT window), the same in every panel; default: each
        panel from its least to its greatest value.
    """
    img = image.detach().float().mean(0).cpu().numpy()
    heat = heat_map(values)
    limits_of_grey = {"vmin": grey[0], "vmax": grey[1]} if grey is not None else {}
    rank = img.ndim
    if rank == 1:
        return _signal_panel(img, heat, title, fs, annotations)
    if rank == 2:
        fig, axes = plt.subplots(1, 2, figsize=(4.8, 2.3))
        aspect = spacing[0] / spacing[1] if spacing is not None and len(spacing) == 2 else 1.0
        axes[0].imshow(img, cmap="gray", aspect=aspect, **limits_of_grey)
        axes[1].imshow(img, cmap="gray", aspect=aspect, **limits_of_grey)
        axes[1].imshow(map_colours(heat), aspect=aspect, interpolation="nearest")
        for a in axes:
            a.set_axis_off()
        add_colourbar(fig, axes[1], heat)
        fig.suptitle(title, fontsize=9)
        return fig
    peak = peak_planes(heat)
    limits = map_limits(heat)
    mm_per = (list(spacing) + [1.0] * 3)[:3] if spacing is not None else [1.0, 1.0, 1.0]
    layout = panels(affine, planes)
    # each panel with its (row, column) voxel size; sizes in mm so that every panel has one scale
    mm = [(img.shape[p.cols] * mm_per[p.cols], img.shape[p.rows] * mm_per[p.rows]) for p in layout]
    # full resolution: at least one figure pixel per voxel (dpi 100), small volumes scaled up
    per_mm = max(1.0 / min(mm_per), 180.0 / max(max(w, h) for w, h in mm))
    width = sum(w for w, _h in mm) * per_mm / 100 + 1.2
    height = max(h for _w, h in mm) * per_mm / 100 + 0.6
    fig, axes = plt.subplots(1, 3, figsize=(width, height), gridspec_kw={"width_ratios": [w for w, _h in mm]})
    for ax, panel in zip(axes, layout):
        index = peak[panel.axis]
        aspect = mm_per[panel.rows] / mm_per[panel.cols]
        ax.imshow(panel.draw(img, index), cmap="gray", aspect=aspect, interpolation="nearest", **limits_of_grey)
        ax.imshow(map_colours(panel.draw(heat, index), limits=limits), aspect=aspect, interpolation="nearest")
        ax.set_title(slice_words(index, img.shape[panel.axis], panel.name), fontsize=7)  # 1-based, as the viewer
        ax.set_axis_off()
    add_colourbar(fig, list(axes), heat)
    fig.suptitle(title, fontsize=9)
    return fig


def comparison_figure(
    images: torch.Tensor, maps: list[tuple[str, torch.Tensor]], row_labels: list[str]
) -> "plt.Figure":
    """One grid to compare methods: a row per case, the input then one column per method.

    Parameters
    ----------
    images : torch.Tensor
        ``(N, C, H, W)`` inputs (2D only; 1D and 3D use :func:`attribution_figure` per case).
    maps : list of (str, torch.Tensor)
        Method name and its attributions ``(N, C', H, W)`` at the input's size. Each map is
        scaled on its own, as methods differ in units.
    row_labels : list of str
        One label per case, shown beside its row.
    """
    n, cols = len(images), len(maps) + 1
    fig, axes = plt.subplots(n, cols, figsize=(1.5 * cols, 1.6 * n), squeeze=False)
    for i in range(n):
        img = images[i].detach().float().mean(0).cpu().numpy()
        axes[i, 0].imshow(img, cmap="gray")
        axes[i, 0].set_ylabel(row_labels[i], fontsize=7, rotation=0, ha="right", va="center")
        for j, (name, values) in enumerate(maps, start=1):
            heat = heat_map(values[i])
            axes[i, j].imshow(img, cmap="gray")
            axes[i, j].imshow(map_colours(heat), interpolation="nearest")
            if i == 0:
                axes[i, j].set_title(name, fontsize=8)
        if i == 0:
            axes[i, 0].set_title("input", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        for spine in ax.spines.values():
            spine.set_visible(False)
    fig.tight_layout()
    return fig


def overlay_image(image: torch.Tensor, heat: torch.Tensor, *, alpha: float = 0.7,
                  grey: tuple[float, float] | None = None) -> np.ndarray:
    """The attribution blended over the image, pixel for pixel, at the image's full resolution.

    Parameters
    ----------
    image : torch.Tensor
        ``(H, W)`` grey or ``(3, H, W)`` colour, any value range (shown min-max scaled, or from
        ``grey[0]`` black to ``grey[1]`` white: a CT window).
    heat : torch.Tensor
        ``(H, W)`` map on the same grid (coloured as :mod:`medlens.viz.colours` says).
    alpha : float
        Opacity of the map where it is strongest; near zero the map is transparent.

    Returns
    -------
    numpy.ndarray
        uint8 RGB ``(H, W, 3)``: one output pixel per input pixel.
    """
    img = image.detach().double().cpu().numpy()
    img = img if img.ndim == 2 else np.moveaxis(img, 0, -1)
    lo, hi = (float(img.min()), float(img.max())) if grey is None else grey
    scaled = np.clip((img - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0)
    rgb = np.repeat(scaled[..., None], 3, axis=-1) if scaled.ndim == 2 else scaled[..., :3]
    h = heat.detach().double().cpu().numpy()
    if h.shape != rgb.shape[:2]:
        raise ValueError(f"map {h.shape} and image {rgb.shape[:2]} differ in shape")
    rgba = map_colours(h, alpha=alpha)
    a = rgba[..., 3:]
    return np.round(255 * ((1 - a) * rgb + a * rgba[..., :3])).astype(np.uint8)


def overlay_png(image: torch.Tensor, heat: torch.Tensor, *, alpha: float = 0.7,
                grey: tuple[float, float] | None = None) -> bytes:
    """:func:`overlay_image` at one pixel per input pixel, with a labelled colour bar to its right.

    The picture's left ``W`` columns are exactly :func:`overlay_image` (the bar is drawn on its
    own and placed beside it, nothing is resampled); a short image is padded below in white to
    fit the bar.
    """
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    rgb = overlay_image(image, heat, alpha=alpha, grey=grey)
    h, w = rgb.shape[:2]
    cmap, vmin, vmax, signed = map_limits(heat.detach().double().cpu().numpy())
    dpi, bar_w, bar_h = 100, 90, max(h, 120)
    fig = plt.figure(figsize=(bar_w / dpi, bar_h / dpi), dpi=dpi)
    cax = fig.add_axes([0.1, 0.06, 0.14, 0.88])
    cb = fig.colorbar(ScalarMappable(Normalize(vmin, vmax), matplotlib.colormaps[cmap]), cax=cax)
    cb.ax.tick_params(labelsize=6)
    if signed:
        cb.set_label("against  <  0  <  for", fontsize=6)
    fig.canvas.draw()
    bar = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    plt.close(fig)
    picture = np.full((bar.shape[0] if bar.shape[0] > h else h, w + bar.shape[1], 3), 255, dtype=np.uint8)
    picture[:h, :w] = rgb
    picture[: bar.shape[0], w:] = bar
    return image_png(picture)


def image_png(rgb: np.ndarray) -> bytes:
    """uint8 ``(H, W, 3)`` -> PNG bytes at exactly that size."""
    buf = io.BytesIO()
    plt.imsave(buf, rgb, format="png")
    return buf.getvalue()
