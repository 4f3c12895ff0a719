"""Lesion shapes that can be told apart: mask statistics against closed forms, and per shape
on generated lesions (the irregular field now lobulates at lesion scale)."""

from __future__ import annotations

import math

import pytest
import torch

from medlens.data.synthetic.lesions import LESION_SHAPES, make_lesion_benchmark, mask_statistics


def _grid(n):
    return torch.meshgrid(torch.arange(n, dtype=torch.float64), torch.arange(n, dtype=torch.float64), indexing="ij")


def test_statistics_closed_forms():
    y, x = _grid(81)
    disk = ((y - 40) ** 2 + (x - 40) ** 2) < 30**2
    ellipse = ((y - 40) / 12) ** 2 + ((x - 40) / 36) ** 2 < 1
    square = torch.zeros(81, 81, dtype=torch.bool)
    square[10:30, 10:30] = True
    ring = disk & (((y - 40) ** 2 + (x - 40) ** 2) > 20**2)
    st = mask_statistics(torch.stack([disk, ellipse, square, ring, torch.zeros_like(disk)]))
    assert st["axis_ratio"][0] == pytest.approx(1.0, abs=0.01)
    assert st["axis_ratio"][1] == pytest.approx(3.0, rel=0.02)  # semi-axes 36 / 12
    assert st["axis_ratio"][2] == pytest.approx(1.0, abs=1e-9)
    assert st["solidity"][2] == pytest.approx(1.0)  # a square is its own hull (corners included)
    assert st["solidity"][0] > 0.97
    assert st["solidity"][3] == pytest.approx((30**2 - 20**2) / 30**2, abs=0.04)  # ring / disk area
    assert st["size"][2] == 400 and math.isnan(st["axis_ratio"][4]) and math.isnan(st["solidity"][4])
    ball = (torch.stack(torch.meshgrid(*[torch.arange(21.0)] * 3, indexing="ij")) - 10).norm(dim=0) < 8
    s3 = mask_statistics(ball[None])
    assert s3["axis_ratio"][0] == pytest.approx(1.0, abs=0.01) and s3["solidity"][0] > 0.85


def test_generated_shapes_differ_measurably():
    d = make_lesion_benchmark(spatial_dims=2, size=64, n_train=0, n_val=0, n_test=160, seed=3)
    st = mask_statistics(d["test_masks"])
    shape = torch.as_tensor(d["test_lesion_shape"])
    ar, so = st["axis_ratio"], st["solidity"]
    med = {name: (float(ar[shape == k].median()), float(so[shape == k].median())) for k, name in enumerate(LESION_SHAPES)}
    assert med["round"][0] < 1.08 and med["elongated"][0] > 1.6
    assert med["irregular"][0] > med["round"][0] + 0.15  # lobes break the symmetry
    assert med["irregular"][1] < med["round"][1] - 0.04  # and the convexity
    # a two-threshold rule on the masks alone names most shapes (chance: 1/3)
    pos = shape >= 0
    rule = torch.where(ar > 1.6, 1, torch.where((so < 0.9) | (ar > 1.2), 2, 0))
    assert (rule[pos] == shape[pos]).float().mean() > 0.8
