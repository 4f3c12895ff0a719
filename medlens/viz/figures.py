"""Overlays of an attribution on its input, for 1D signals, 2D slices and 3D volumes."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402


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
    lo, hi = float(heat.min()), float(heat.max())
    if lo < 0 < hi:
        m = max(-lo, hi) or 1.0
        return "RdBu_r", -m, m
    if hi <= 0 < -lo:
        return "Blues_r", lo, 0.0
    # unsigned maps (probabilities, CAMs) are shown from their own minimum: RISE scores, for
    # instance, vary by a few percent around the base probability
    return "inferno", lo, hi if hi > lo else lo + 1.0


def _slices(volume_heat: np.ndarray, n: int) -> list[int]:
    """Axial slices around the one holding the most attribution mass."""
    depth = volume_heat.shape[0]
    centre = int(np.abs(volume_heat).reshape(depth, -1).sum(1).argmax())
    half = n // 2
    start = min(max(0, centre - half), max(0, depth - n))
    return list(range(start, min(depth, start + n)))


def attribution_figure(
    image: torch.Tensor, values: torch.Tensor, title: str = "", *, n_slices: int = 6
) -> "plt.Figure":
    """A figure showing ``values`` over ``image``.

    Parameters
    ----------
    image : torch.Tensor
        One input ``(C, *spatial)`` with 1 to 3 spatial dims.
    values : torch.Tensor
        Its attribution ``(C', *spatial)`` at the same spatial size.
    """
    img = image.detach().float().mean(0).cpu().numpy()
    heat = heat_map(values)
    cmap, vmin, vmax = _limits(heat)
    rank = img.ndim
    if rank == 1:
        fig, (ax, strip) = plt.subplots(2, 1, figsize=(6, 2.6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        ax.plot(img, color="black", lw=1)
        ax.set_ylabel("signal")
        strip.imshow(heat[None, :], aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, extent=(0, len(heat), 0, 1))
        strip.set_yticks([])
        strip.set_xlabel("time (samples)")
        ax.set_title(title, fontsize=9)
        return fig
    if rank == 2:
        fig, axes = plt.subplots(1, 2, figsize=(4.4, 2.3))
        axes[0].imshow(img, cmap="gray")
        axes[1].imshow(img, cmap="gray")
        axes[1].imshow(heat, cmap=cmap, vmin=vmin, vmax=vmax, alpha=0.55)
        for a in axes:
            a.set_axis_off()
        fig.suptitle(title, fontsize=9)
        return fig
    chosen = _slices(heat, n_slices)
    fig, axes = plt.subplots(2, len(chosen), figsize=(1.4 * len(chosen), 3.0), squeeze=False)
    for j, z in enumerate(chosen):
        axes[0, j].imshow(img[z], cmap="gray")
        axes[1, j].imshow(img[z], cmap="gray")
        axes[1, j].imshow(heat[z], cmap=cmap, vmin=vmin, vmax=vmax, alpha=0.55)
        axes[0, j].set_title(f"slice {z}", fontsize=7)
        for a in axes[:, j]:
            a.set_axis_off()
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
            cmap, vmin, vmax = _limits(heat)
            axes[i, j].imshow(img, cmap="gray")
            axes[i, j].imshow(heat, cmap=cmap, vmin=vmin, vmax=vmax, alpha=0.6)
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


def overlay_image(image: torch.Tensor, heat: torch.Tensor, *, alpha: float = 0.5) -> np.ndarray:
    """The attribution blended over the image, pixel for pixel, at the image's full resolution.

    Parameters
    ----------
    image : torch.Tensor
        ``(H, W)`` grey or ``(3, H, W)`` colour, any value range (shown min-max scaled).
    heat : torch.Tensor
        ``(H, W)`` map on the same grid (a diverging map for signed values, as
        :func:`attribution_figure` chooses).
    alpha : float
        Opacity of the map where it is strongest; weak values fade into the image.

    Returns
    -------
    numpy.ndarray
        uint8 RGB ``(H, W, 3)``: one output pixel per input pixel.
    """
    img = image.detach().double().cpu().numpy()
    img = img if img.ndim == 2 else np.moveaxis(img, 0, -1)
    lo, hi = float(img.min()), float(img.max())
    grey = (img - lo) / (hi - lo if hi > lo else 1.0)
    rgb = np.repeat(grey[..., None], 3, axis=-1) if grey.ndim == 2 else grey[..., :3]
    h = heat.detach().double().cpu().numpy()
    if h.shape != rgb.shape[:2]:
        raise ValueError(f"map {h.shape} and image {rgb.shape[:2]} differ in shape")
    cmap, vmin, vmax = _limits(h)
    colours = matplotlib.colormaps[cmap]((h - vmin) / (vmax - vmin if vmax > vmin else 1.0))[..., :3]
    strength = np.abs(h) / (np.abs(h).max() or 1.0) if vmin < 0 else (h - vmin) / (vmax - vmin if vmax > vmin else 1.0)
    a = alpha * np.clip(strength, 0.0, 1.0)[..., None]
    return np.round(255 * ((1 - a) * rgb + a * colours)).astype(np.uint8)


def image_png(rgb: np.ndarray) -> bytes:
    """uint8 ``(H, W, 3)`` -> PNG bytes at exactly that size."""
    buf = io.BytesIO()
    plt.imsave(buf, rgb, format="png")
    return buf.getvalue()
