"""One colour scheme for every picture of a map: the viewer, the figures and the files agree; the
overlay is transparent near zero and carries a colour bar; volumes show the viewer's three planes
at full resolution; signals are drawn in seconds with their annotations."""

from __future__ import annotations

import io

import matplotlib
import numpy as np
import torch
from PIL import Image

from medlens.report.viewer import MapLayer, viewer_html
from medlens.viz import attribution_figure, figure_png, overlay_image, overlay_png
from medlens.viz.colours import SIGNED_CMAP, UNSIGNED_CMAP, lut, map_colours, map_limits


def _scan() -> torch.Tensor:
    return torch.linspace(0, 1, 40 * 30, dtype=torch.float64).reshape(40, 30)


def _signed_map() -> torch.Tensor:
    h = torch.zeros(40, 30, dtype=torch.float64)
    h[5:10, 5:10], h[20:25, 10:20] = 2.0, -1.0
    return h


def test_signed_and_unsigned_maps_get_the_one_scheme():
    assert map_limits(np.array([-1.0, 3.0]))[:3] == (SIGNED_CMAP, -3.0, 3.0)
    assert map_limits(np.array([-2.0, -1.0]))[0] == SIGNED_CMAP  # evidence against only: still signed
    assert map_limits(np.array([0.2, 0.5]))[:3] == (UNSIGNED_CMAP, 0.2, 0.5)


def test_viewer_uses_the_same_colour_maps_as_the_files():
    import json
    import re

    page = viewer_html(_scan().numpy(), [MapLayer("m", _signed_map().numpy())], kind="image")
    payload = json.loads(re.search(r'<script type="application/json"[^>]*>(.*?)</script>', page, re.S).group(1))
    assert payload["luts"] == {"signed": lut(SIGNED_CMAP), "unsigned": lut(UNSIGNED_CMAP)}
    assert payload["maps"][0]["signed"] is True


def test_overlay_is_transparent_near_zero_and_coloured_by_the_scheme():
    scan, heat = _scan(), _signed_map()
    rgb = overlay_image(scan, heat, alpha=0.7).astype(float)
    grey = np.round(255 * (scan.numpy() - 0) / 1.0)
    zero = heat.numpy() == 0
    assert np.abs(rgb[zero] - grey[zero][:, None]).max() <= 0.5  # the scan, unveiled
    top = np.array(matplotlib.colormaps[SIGNED_CMAP](1.0)[:3]) * 255
    expected = 0.3 * grey[7, 7] + 0.7 * top
    assert np.abs(rgb[7, 7] - expected).max() <= 1.0  # strongest evidence for: the scheme's orange at 70 %
    bottom = np.array(matplotlib.colormaps[SIGNED_CMAP](0.25)[:3]) * 255  # -1 of +-2
    assert np.abs(rgb[22, 15] - (0.65 * grey[22, 15] + 0.35 * bottom)).max() <= 1.0  # half strength, half opacity
    assert map_colours(heat.numpy())[..., 3][zero].max() == 0.0


def test_overlay_file_has_the_picture_pixel_for_pixel_and_a_colour_bar():
    scan, heat = _scan(), _signed_map()
    with Image.open(io.BytesIO(overlay_png(scan, heat))) as im:
        picture = np.asarray(im.convert("RGB"))
    assert picture.shape[1] > 30 and picture.shape[0] >= 40
    assert np.array_equal(picture[:40, :30], overlay_image(scan, heat))
    bar = picture[:, 30:]
    # the bar holds both ends of the signed map (purple and orange pixels)
    ends = [np.array(matplotlib.colormaps[SIGNED_CMAP](v)[:3]) * 255 for v in (0.02, 0.98)]
    for colour in ends:
        assert (np.abs(bar.astype(float) - colour).max(-1) < 12).any()


def test_volume_figure_shows_three_planes_through_the_peak_at_full_resolution():
    volume = torch.rand(1, 20, 64, 48, generator=torch.Generator().manual_seed(0))
    values = torch.zeros(1, 20, 64, 48)
    values[0, 12, 40, 30] = 5.0
    values[0, 3, 3, 3] = -1.0
    fig = attribution_figure(volume, values, "vol")
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["axial slice 13 of 20", "coronal slice 41 of 64", "sagittal slice 31 of 48"]  # 1-based (core.numbering)
    planes = [ax for ax in fig.axes if ax.get_title()]
    fig.canvas.draw()
    for ax, (h, w) in zip(planes, [(64, 48), (20, 48), (20, 64)]):
        box = ax.get_window_extent()
        assert box.width >= w - 1 and box.height >= h - 1  # at least one pixel per voxel
    png = figure_png(fig)
    assert png[:4] == b"\x89PNG"


def test_signal_figure_is_in_seconds_with_annotations():
    signal = torch.sin(torch.linspace(0, 12, 720))[None]
    values = torch.zeros(1, 720)
    values[0, 300:330] = 1.0
    fig = attribution_figure(signal, values, "beat", fs=360.0, annotations=[(90, "N"), (600, "V")])
    axes = [ax for ax in fig.axes if ax.get_xlabel()]
    assert axes[-1].get_xlabel() == "time (s)" and axes[-1].get_xlim()[1] == 2.0
    texts = {t.get_text() for ax in fig.axes for t in ax.texts}
    assert {"N", "V"} <= texts
    unknown = attribution_figure(signal, values, "beat")
    assert "sampling rate unknown" in [ax for ax in unknown.axes if ax.get_xlabel()][-1].get_xlabel()
