"""Occlusion through sliding windows on a volume thinner than the roi (a CT of few slices, a
224 x 224 x 60 MRI through a 96^3 roi): the inferer pads it to the roi, and occlusion patches
lying wholly in that padding are not run (tour20). The map on the volume stays exact occlusion
and the printed plan counts only the window evaluations that run."""

from __future__ import annotations

import re

import torch
import torch.nn.functional as F

from medlens.attribution import sliding_window as sw
from medlens.attribution.sliding_occlusion_plan import evaluation_count
from medlens.core.progress import Progress
from tests.attribution.test_sliding_window import Counting, naive_occlusion, patch_model


def test_patches_in_the_padding_are_skipped_and_the_map_is_naive_occlusion():
    volume = torch.randn(1, 1, 20, 6, 18, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    model, windows = Counting(patch_model()), sw.Windows((16, 16, 16), 0.25, batch=4)
    box = [(4, 14), (1, 5), (3, 15)]
    lines = []
    got = sw.explain_sliding_window(model, volume, windows, "occlusion", target_class=1, box=box,
                                    window=4, stride=4, progress=Progress(sink=lines.append))
    # the reference: the volume padded like MONAI (5 + 6 + 5 along the thin axis), occluded patch by patch
    padded = F.pad(volume, (0, 0, 5, 5, 0, 0))
    weight = sw.region_weight(padded.shape[2:], 2, channel=1, box=[(4, 14), (6, 10), (3, 15)], dtype=volume.dtype)
    expected = naive_occlusion(model.net, padded, windows, weight, (4, 4, 4), (4, 4, 4))[:, 5:11]
    torch.testing.assert_close(got[0, 0], expected)
    planned = re.fullmatch(r"planned: occlusion window 4x4x4 stride 4x4x4: ([\d,]+) window evaluations", lines[0])
    assert planned, lines
    evaluations = int(planned.group(1).replace(",", ""))
    active = windows.starts(padded.shape[2:])
    every_patch = evaluation_count(padded.shape[2:], windows.roi, active, (4,) * 3, (4,) * 3)
    # along the thin axis the patches start at 0, 4, 8, 12: those at 0 and 12 lie wholly in the padding
    assert evaluations == len(active) + (every_patch - len(active)) // 2
    model.rows = 0
    sw.sliding_occlusion(model, padded, sw.SlidingTarget(weight), windows, window=(4,) * 3, stride=(4,) * 3,
                         inside=[(0, 20), (5, 11), (0, 18)])
    assert model.rows == evaluations  # the plan counts what runs
