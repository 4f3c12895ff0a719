"""Gradient, integrated gradients and Grad-CAM through sliding windows say their plan (windows,
batches, window evaluations) before they run and advance a progress bar window by window, as
occlusion does (tour20): a whole CT of 512 x 512 x 300 takes minutes."""

from __future__ import annotations

import io
import re

import pytest
import torch

from medlens.attribution import sliding_window as sw
from medlens.core.progress import Progress
from tests.attribution.test_sliding_window import BOX, Counting, patch_model


@pytest.mark.parametrize("method, options", [("gradient", {}), ("integrated_gradients", {"n_steps": 3}),
                                             ("gradcam", {"layer": "net.2"})])
def test_the_plan_is_said_and_the_bar_counts_every_window_run(method, options):
    volume = torch.randn(1, 1, 24, 22, 20, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    model, windows = Counting(patch_model()), sw.Windows((16, 16, 16), 0.25, batch=3)
    lines, stream = [], io.StringIO()
    sw.explain_sliding_window(model, volume, windows, method, target_class=1, box=BOX,
                              progress=Progress(sink=lines.append), **options)
    planned = re.fullmatch(rf"planned: {method} through .*: ([\d,]+) window evaluations in (\d+) batches of up to 3",
                           lines[0])
    assert planned, lines
    model.rows = 0
    sw.explain_sliding_window(model, volume, windows, method, target_class=1, box=BOX,
                              progress=Progress(stream=stream), **options)
    evaluations = int(planned.group(1).replace(",", ""))
    assert model.rows - 1 == evaluations  # every window the method runs, the probe of the first window aside
    assert f"{evaluations}/{evaluations} [" in stream.getvalue()  # the bar reached the planned count
    assert stream.getvalue().startswith(lines[0])


def test_the_gradient_gives_the_target_value_without_a_second_pass():
    volume = torch.randn(1, 1, 24, 22, 20, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    model, windows = Counting(patch_model()), sw.Windows((16, 16, 16), 0.25, batch=3)
    result = sw.explain_sliding_window(model, volume, windows, "gradient", target_class=1, box=BOX, details=True)
    weight = sw.region_weight(volume.shape[2:], 2, channel=1, box=BOX, dtype=volume.dtype)
    active = sw.weighed_windows(windows.starts(volume.shape[2:]), weight, windows.roi)
    assert model.rows == 1 + len(active)  # the probe of the first window, then each weighed window once
    assert result.score == pytest.approx(sw.sliding_score(model.net, volume, sw.SlidingTarget(weight), windows))
