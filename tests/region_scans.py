"""Scans whose evidence is known: PNGs at 40x40 for a 20x20 TorchScript model that reads only one
region, masks of that region drawn on the scans' grid, and a labels file naming them."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image


class ReadsOneRegion(torch.nn.Module):
    """Class 1's score is the mean of rows 4-7, columns 8-13 of a 20x20 input."""

    def forward(self, x):
        z = x[:, :, 4:8, 8:14].mean(dim=(1, 2, 3)) * 8
        return torch.stack([-z, z], dim=1)


def write_region_scans(folder, seed: int, n: int = 4):
    """``folder/scans/s{k}.png``, ``folder/masks/s{k}.npy`` (the region on the 40x40 grid, rows
    8-15 and columns 16-27), ``folder/labels.csv`` (case,label,mask) and ``folder/region.pt``.

    Returns the scans folder, the labels file and the model file.
    """
    scans, masks = folder / "scans", folder / "masks"
    scans.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        Image.fromarray((rng.random((40, 40)) * 200 + 20).astype(np.uint8)).save(scans / f"s{k}.png")
        mask = np.zeros((40, 40), np.uint8)
        mask[8:16, 16:28] = 1  # rows 4-7, columns 8-13 of the model grid
        np.save(masks / f"s{k}.npy", mask)
        rows.append(f"s{k}.png,1,masks/s{k}.npy")
    (folder / "labels.csv").write_text("case,label,mask\n" + "\n".join(rows) + "\n")
    torch.jit.save(torch.jit.script(ReadsOneRegion()), folder / "region.pt")
    return scans, folder / "labels.csv", folder / "region.pt"
