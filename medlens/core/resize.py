"""Shape-generic resizing of maps ``(B, C, *spatial)`` for 1, 2 or 3 spatial dims."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from medlens.core.layers import interpolation_mode


def upsample_to(values: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """Resize ``(B, C, *spatial)`` to ``(B, C, *size)`` by (bi/tri)linear interpolation."""
    size = tuple(int(s) for s in size)
    if tuple(values.shape[2:]) == size:
        return values
    return F.interpolate(values, size=size, mode=interpolation_mode(len(size)), align_corners=False)
