"""What the imaging-system runners share: a log type, a result base, pictures of a map over an
image, NaN-aware means."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any, Callable

import torch

Log = Callable[[str], None]


def quiet(_: str) -> None:
    """A log that says nothing."""


class NumbersAndPictures:
    """Base of a system's result dataclass: numbers in its fields, report pictures in ``images``."""

    def as_dict(self) -> dict[str, Any]:
        """The numbers as plain data (JSON-ready); the pictures left out."""
        return {k: v for k, v in asdict(self).items() if k != "images"}


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
