"""The one colour scheme of explanation maps, shared by every picture, the viewer and the files.

Signed maps (evidence for and against a class) use matplotlib's ``PuOr_r``: orange for evidence
for, purple for evidence against, white at zero; unsigned maps (attention, probabilities, CAMs)
use ``cividis``. Both are readable by colour-blind readers. An overlay is transparent where the
map is near zero (its opacity grows with the map's magnitude), so the white centre of the
diverging map never veils the scan.
"""

from __future__ import annotations

import matplotlib
import numpy as np

__all__ = ["NEGATIVE_RGB", "POSITIVE_RGB", "SIGNED_CMAP", "SIGNED_WORDS", "UNSIGNED_CMAP", "add_colourbar", "lut",
           "map_colours", "map_limits"]

#: Signed maps: purple (against) - white (zero) - orange (for).
SIGNED_CMAP = "PuOr_r"
#: Unsigned maps: dark blue (low) to yellow (high).
UNSIGNED_CMAP = "cividis"
#: How reports name the signed map's colours.
SIGNED_WORDS = "orange for, purple against"


def _rgb(name: str, at: float) -> tuple[int, int, int]:
    r, g, b, _a = matplotlib.colormaps[name](at)
    return round(255 * r), round(255 * g), round(255 * b)


#: The signed map's colours for evidence for and against, as RGB bytes (for markup that colours
#: text, e.g. highlighted words).
POSITIVE_RGB, NEGATIVE_RGB = _rgb(SIGNED_CMAP, 0.85), _rgb(SIGNED_CMAP, 0.15)


def map_limits(heat: np.ndarray) -> tuple[str, float, float, bool]:
    """Colour map, limits and signedness of a map: signed maps symmetric around 0; unsigned maps
    from their own minimum (RISE scores vary by a few percent around the base probability);
    an all-negative map is shown as signed."""
    h = np.nan_to_num(np.asarray(heat, dtype=np.float64))
    lo, hi = float(h.min()), float(h.max())
    if lo < 0:
        m = max(-lo, hi) or 1.0
        return SIGNED_CMAP, -m, m, True
    return UNSIGNED_CMAP, lo, hi if hi > lo else lo + 1.0, False


def lut(name: str) -> list[int]:
    """256 RGB entries (flattened bytes) of a colour map, for the viewer's script."""
    rgb = (np.asarray(matplotlib.colormaps[name](np.linspace(0, 1, 256)))[:, :3] * 255).round().astype(int)
    return rgb.reshape(-1).tolist()


def map_colours(heat: np.ndarray, *, alpha: float = 0.7, limits: tuple[str, float, float, bool] | None = None) -> np.ndarray:
    """RGBA ``(*heat.shape, 4)`` in [0, 1]: the map's colour with opacity ``alpha * strength``,
    strength = ``|v| / max|v|`` for signed maps and ``(v - min) / (max - min)`` for unsigned ones,
    so the scan shows through where the map is near zero. ``limits``: :func:`map_limits` of the
    whole map when ``heat`` is a part of it (a plane of a volume)."""
    h = np.nan_to_num(np.asarray(heat, dtype=np.float64))
    cmap, vmin, vmax, signed = limits if limits is not None else map_limits(h)
    rgba = np.array(matplotlib.colormaps[cmap]((h - vmin) / (vmax - vmin)), dtype=np.float64)
    strength = np.abs(h) / vmax if signed else (h - vmin) / (vmax - vmin)
    rgba[..., 3] = alpha * np.clip(strength, 0.0, 1.0)
    return rgba


def add_colourbar(fig, ax, heat: np.ndarray, label: str = "") -> None:
    """A colour bar for ``heat`` beside ``ax`` (signed: "against / 0 / for" at the ends)."""
    from matplotlib.cm import ScalarMappable
    from matplotlib.colors import Normalize

    cmap, vmin, vmax, signed = map_limits(heat)
    bar = fig.colorbar(ScalarMappable(Normalize(vmin, vmax), matplotlib.colormaps[cmap]), ax=ax, fraction=0.046,
                       pad=0.02)
    bar.ax.tick_params(labelsize=6)
    if label or signed:
        bar.set_label(label or "against  <  0  <  for", fontsize=6)
