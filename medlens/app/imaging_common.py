"""What the imaging-system runners share: a log type, pictures of a map over an image, NaN-aware means."""

from __future__ import annotations

import math
from typing import Callable

import torch

Log = Callable[[str], None]


def quiet(_: str) -> None:
    """A log that says nothing."""


def picture(image: torch.Tensor, heat: torch.Tensor, scale: int = 3) -> bytes:
    """PNG of ``heat`` ``(H, W)`` over ``image`` ``(H, W)``, each pixel shown ``scale`` x ``scale``."""
    import numpy as np

    from medlens.viz.figures import image_png, overlay_image

    rgb = overlay_image(image, heat)
    return image_png(np.kron(rgb, np.ones((scale, scale, 1), dtype=np.uint8)))


def nanmean(v: torch.Tensor) -> float:
    """Mean of the finite-or-infinite, non-NaN entries; NaN when there are none."""
    v = v.double()
    v = v[~torch.isnan(v)]
    return float(v.mean()) if v.numel() else math.nan
