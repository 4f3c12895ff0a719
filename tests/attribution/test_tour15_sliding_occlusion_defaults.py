"""Occlusion through sliding windows at its defaults (tour15): the window and stride are chosen
from the counted cost of its window evaluations, within what plain occlusion's default spends on
a volume, and the map at those defaults is still exact occlusion; explicit options run as given."""

from __future__ import annotations

import itertools

import pytest
import torch

from medlens.attribution import sliding_window as sw
from medlens.attribution.occlusion import window_starts
from medlens.attribution.sliding_occlusion_plan import evaluation_count, plan_occlusion, whole_volume_budget
from medlens.core import cost
from medlens.core.progress import Progress
from tests.attribution.test_sliding_window import BOX, naive_occlusion, patch_model


def naive_count(spatial, roi, overlap, window, stride):
    """Every window once, then every (patch, window) pair that overlaps, listed one by one."""
    starts = sw.Windows(roi, overlap).starts(spatial)
    patches = itertools.product(*[window_starts(n, w, s) for n, w, s in zip(spatial, window, stride)])
    return len(starts) + sum(1 for p in patches for s in starts
                             if all(a < si + r and si < a + w for a, w, si, r in zip(p, window, s, roi)))


def test_the_default_plan_on_a_whole_mri_fits_the_bound_and_is_counted_exactly():
    # a patch model about as costly per 96^3 window as a small MONAI U-Net (5.2 vs 6.5 GFLOP counted)
    net = torch.nn.Sequential(torch.nn.Conv3d(1, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(8, 2, 1)).eval()
    roi, spatial = (96, 96, 96), (224, 224, 96)  # a 224 x 224 x 60 MRI, padded to the roi in depth
    starts = sw.Windows(roi, 0.25).starts(spatial)
    per_window = cost.forward_cost(net, torch.zeros(1, 1, *roi))
    # the old default (a quarter of the roi, stride 12): 9 windows, then the 4,732 occluded ones that a
    # user stopped after 17 minutes
    assert len(starts) == 9 and evaluation_count(spatial, roi, starts, (24,) * 3, (12,) * 3) == 9 + 4732
    assert 4741 * per_window > whole_volume_budget(3)
    plan = plan_occlusion(spatial, roi, starts, per_window)  # counted, nothing run
    assert plan.chosen and plan.evaluations * per_window <= whole_volume_budget(3)
    assert plan.evaluations == naive_count(spatial, roi, 0.25, plan.window, plan.stride)
    assert plan.window == (48, 48, 48) and plan.stride == (24, 24, 24)  # half the roi: 597 evaluations
    finer = evaluation_count(spatial, roi, starts, (32,) * 3, (16,) * 3)  # a third of the roi does not fit
    assert finer * per_window > whole_volume_budget(3)
    assert f"{plan.evaluations:,} window evaluations" in plan.note and "pass window= and stride=" in plan.note


def test_the_map_at_the_chosen_defaults_equals_a_naive_occlusion(monkeypatch):
    volume = torch.randn(1, 1, 24, 22, 20, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    model, windows = patch_model(), sw.Windows((16, 16, 16), 0.25, "gaussian", batch=4)
    starts = windows.starts(volume.shape[2:])
    per_window = cost.forward_cost(model, volume[..., :16, :16, :16])
    # a budget that affords half-roi patches (8^3 at stride 4) and not the third (5^3 at stride 2)
    affordable = evaluation_count(volume.shape[2:], windows.roi, starts, (8,) * 3, (4,) * 3)
    scale = whole_volume_budget(3) / cost.FLOP_BUDGET
    monkeypatch.setattr(cost, "FLOP_BUDGET", affordable * per_window / scale * (1 + 1e-9))
    rows = []
    model.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]) if i[0].device.type != "meta" else None)
    result = sw.explain_sliding_window(model, volume, windows, "occlusion", target_class=1, box=BOX, details=True)
    assert result.extras["chosen"] == {"window": (8, 8, 8), "stride": (4, 4, 4), "window_evaluations": affordable}
    assert "occlusion window 8x8x8 stride 4x4x4" in result.extras["note"]
    assert sum(rows) - rows[0] - len(starts) == affordable  # as planned: the probe window and the score pass aside
    weight = sw.region_weight(volume.shape[2:], 2, channel=1, box=BOX, dtype=volume.dtype)
    expected = naive_occlusion(model, volume, windows, weight, (8, 8, 8), (4, 4, 4))
    torch.testing.assert_close(result.values[0, 0], expected)


@pytest.mark.parametrize("options, window, stride", [
    ({"window": 8, "stride": 8}, (8, 8, 8), (8, 8, 8)),
    ({"window": (12, 8, 10)}, (12, 8, 10), (6, 4, 5)),
    ({"stride": 4}, (4, 4, 4), (4, 4, 4)),
])
def test_explicit_window_and_stride_are_run_as_given(options, window, stride):
    volume = torch.randn(1, 1, 24, 22, 20, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    model, windows = patch_model(), sw.Windows((16, 16, 16), 0.25, batch=8)
    lines = []
    result = sw.explain_sliding_window(model, volume, windows, "occlusion", target_class=1, box=BOX, details=True,
                                       progress=Progress(sink=lines.append), **options)
    weight = sw.region_weight(volume.shape[2:], 2, channel=1, box=BOX, dtype=volume.dtype)
    expected, evals = sw.sliding_occlusion(model, volume, sw.SlidingTarget(weight), windows, window=window,
                                           stride=stride)
    torch.testing.assert_close(result.values, expected)
    assert result.extras == {}  # nothing was chosen for the user
    size, step = "x".join(map(str, window)), "x".join(map(str, stride))
    assert lines == [f"planned: occlusion window {size} stride {step}: {evals:,} window evaluations"]
