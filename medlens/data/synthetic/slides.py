"""Large "slides" where a few patches carry the class evidence, with those patches known.

Ground truth for attention over patches (Ilse et al. 2018; Tomita et al. 2019): an image too
large for one pass, whose label is caused by a handful of small objects, so that the share of
attention on the evidence patches can be measured against their share of the patches.

* background: a mosaic of real chest X-rays (the bundled PneumoniaMNIST split of the same name,
  so no background is shared between splits), each upsampled to two patches wide and the
  mosaic shifted by a random offset, so that tile borders do not follow the patch grid;
* evidence (positive slides only): 1 to ``max_evidence`` rings (annuli, outer radius about a
  quarter of a patch, 2-3 pixels thick), each wholly inside one patch;
* distractors (both classes): 0 to ``max_distractors`` solid discs of the same size and
  contrast in other patches: a model that detects "a bright object" cannot separate the
  classes, it has to see the ring.

:func:`make_slides` returns images in [0, 1], labels, the evidence patch grid and the exact
pixel masks of the rings and the discs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from medlens.core.random import generator
from medlens.errors import InputError

__all__ = ["SlideSet", "make_slides"]


@dataclass(frozen=True)
class SlideSet:
    """Slides with known evidence patches.

    Attributes
    ----------
    images : torch.Tensor
        float32 ``(N, 1, S, S)`` in [0, 1].
    labels : torch.Tensor
        int64 ``(N,)``: 1 = evidence (rings) present.
    evidence : torch.Tensor
        bool ``(N, S // patch, S // patch)``: patches holding a ring.
    masks : torch.Tensor
        bool ``(N, S, S)``: the rings' pixels.
    distractors : torch.Tensor
        bool ``(N, S, S)``: the discs' pixels.
    patch : int
    """

    images: torch.Tensor
    labels: torch.Tensor
    evidence: torch.Tensor
    masks: torch.Tensor
    distractors: torch.Tensor
    patch: int

    def __len__(self) -> int:
        return int(self.images.shape[0])


def _u(gen: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand((), generator=gen, dtype=torch.float64))


def make_slides(
    n: int,
    *,
    size: int = 512,
    patch: int = 32,
    split: str = "train",
    prevalence: float = 0.5,
    max_evidence: int = 3,
    max_distractors: int = 3,
    contrast: float = 0.35,
    seed: int = 0,
) -> SlideSet:
    """Generate ``n`` slides of ``size`` x ``size`` pixels on a grid of ``patch``-wide patches.

    Parameters
    ----------
    n : int
    size : int
        Slide side, a multiple of ``patch`` (e.g. 1024 with 64-pixel patches, or 512 with 32).
    patch : int
        Patch side; at least 16.
    split : {"train", "val", "test"}
        Which PneumoniaMNIST split the backgrounds come from.
    prevalence : float
        Share of positive slides.
    max_evidence, max_distractors : int
        Rings per positive slide (1..max), discs per slide (0..max).
    contrast : float
        Intensity added by rings and discs (sign chosen so it stays visible).
    seed : int

    Returns
    -------
    SlideSet
    """
    from medlens.data.datasets import load_dataset

    if size % patch or patch < 16 or size < 2 * patch:
        raise InputError(f"slide size {size} must be a multiple (at least 2x) of a patch of at least 16, got patch {patch}")
    if n < 1 or max_evidence < 1 or max_distractors < 0:
        raise InputError("need n >= 1, max_evidence >= 1 and max_distractors >= 0")
    gen = generator(int(seed), "slides")
    grid = size // patch
    xrays = load_dataset("pneumoniamnist", split).inputs[:, 0].float()  # (M, 28, 28)
    tile = 2 * patch
    tiles_per_side = size // tile + 1
    yy, xx = torch.meshgrid(torch.arange(patch, dtype=torch.float64), torch.arange(patch, dtype=torch.float64), indexing="ij")
    images = torch.empty(n, 1, size, size)
    labels = (torch.rand(n, generator=gen) < prevalence).long()
    evidence = torch.zeros(n, grid, grid, dtype=torch.bool)
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    discs = torch.zeros(n, size, size, dtype=torch.bool)
    for i in range(n):
        pick = torch.randint(len(xrays), (tiles_per_side**2,), generator=gen)
        up = F.interpolate(xrays[pick][:, None], size=(tile, tile), mode="bicubic", align_corners=False)[:, 0]
        mosaic = up.reshape(tiles_per_side, tiles_per_side, tile, tile).permute(0, 2, 1, 3).reshape(
            tiles_per_side * tile, tiles_per_side * tile)
        oy, ox = (int(torch.randint(tile, (), generator=gen)) for _ in range(2))
        img = mosaic[oy : oy + size, ox : ox + size].clone().clamp(0, 1)
        n_rings = int(torch.randint(1, max_evidence + 1, (), generator=gen)) if labels[i] else 0
        n_discs = int(torch.randint(0, max_distractors + 1, (), generator=gen))
        cells = torch.randperm(grid * grid, generator=gen)[: n_rings + n_discs]
        for k, cell in enumerate(cells.tolist()):
            gy, gx = divmod(cell, grid)
            r = _u(gen, 0.22, 0.3) * patch
            cy, cx = _u(gen, r + 1, patch - r - 2), _u(gen, r + 1, patch - r - 2)
            dist = ((yy - cy) ** 2 + (xx - cx) ** 2).sqrt()
            ring = k < n_rings
            shape = (dist < r) & (dist > r - _u(gen, 2.0, 3.0)) if ring else dist < r * 0.8
            window = (slice(gy * patch, (gy + 1) * patch), slice(gx * patch, (gx + 1) * patch))
            local = float(img[window][shape].mean())
            sign = 1.0 if local + contrast <= 1.0 else -1.0
            img[window] = torch.where(shape, (img[window] + sign * contrast).clamp(0, 1), img[window])
            if ring:
                masks[i][window] |= shape
                evidence[i, gy, gx] = True
            else:
                discs[i][window] |= shape
        images[i, 0] = img
    return SlideSet(images, labels, evidence, masks, discs, int(patch))
