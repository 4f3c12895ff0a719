"""The shared viewer component: quantisation closed forms, a Python decoder of what the browser
decodes, escaping, errors, and the size of a 256x256x128 CT with three maps."""

from __future__ import annotations

import base64
import json
import re
import time
import zlib

import numpy as np
import pytest

from medlens.errors import InputError
from medlens.report.html import Report
from medlens.report.viewer import (
    Annotation,
    MapLayer,
    quantise_base,
    quantise_map,
    viewer_assets,
    viewer_html,
    viewer_script_hash,
)


def _payload(fragment: str) -> dict:
    m = re.search(r'<script type="application/json" class="ml-data">(.*?)</script>', fragment, re.S)
    return json.loads(m.group(1))


def _decode_u8(spec: dict, shape) -> np.ndarray:
    """What viewer.js does: inflate, then undo the delta along the last axis mod 256."""
    raw = np.frombuffer(zlib.decompress(base64.b64decode(spec["data"])), dtype=np.uint8).reshape(shape)
    return (np.cumsum(raw.astype(np.int64), axis=-1) % 256).astype(np.uint8)


def test_quantise_map_closed_forms():
    v = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
    assert quantise_map(v, True).tolist() == [0, 64, 128, 191, 255]  # 127.5 * (1 + v / 2), rounded half to even
    assert quantise_map(np.array([1.0, 2.0, 3.0]), False).tolist() == [0, 128, 255]
    assert quantise_map(np.zeros(3), False).tolist() == [0, 0, 0]
    assert quantise_map(np.zeros(3), True).tolist() == [128, 128, 128]
    assert quantise_base(np.array([0.0, 5.0, 10.0]), window=(0, 10)).tolist() == [0, 128, 255]
    assert quantise_base(np.array([-1000.0, 40.0, 3000.0]), window=(-160, 240)).tolist() == [0, 128, 255]


@pytest.mark.parametrize("shape", [(23, 31), (5, 7, 9)])
def test_round_trip_through_the_browser_encoding(shape):
    rng = np.random.default_rng(0)
    base = rng.normal(size=shape)
    m = rng.normal(size=shape)
    payload = _payload(viewer_html(base, {"m": m}))
    assert payload["kind"] == ("image" if len(shape) == 2 else "volume") and payload["shape"] == list(shape)
    np.testing.assert_array_equal(_decode_u8(payload["base"], shape), quantise_base(base))
    np.testing.assert_array_equal(_decode_u8(payload["maps"][0], shape), quantise_map(m, True))
    assert payload["maps"][0]["signed"] is True
    assert payload["maps"][0]["peak"] == list(np.unravel_index(np.abs(m).argmax(), shape))


def test_volume_starts_at_the_maps_maximum_and_signal_keeps_floats():
    vol = np.zeros((6, 8, 10))
    m = np.zeros_like(vol)
    m[4, 2, 7] = 3.0
    fragment = viewer_html(vol, [MapLayer("a", np.ones_like(vol)), MapLayer("b", m)], initial=1)
    payload = _payload(fragment)
    assert payload["slices"] == [4, 2, 7] and payload["maps"][1]["signed"] is False
    assert 'data-plane="0" min="0" max="5" value="4"' in fragment and 'value="7"' in fragment
    sig = np.sin(np.linspace(0, 9, 100)).astype(np.float32)
    p = _payload(viewer_html(sig, {"occ": np.abs(sig)}, annotations=[Annotation(50, "R peak")], rate=250))
    raw = np.frombuffer(zlib.decompress(base64.b64decode(p["base"]["data"])), dtype="<f4")
    np.testing.assert_array_equal(raw, sig)
    assert p["shape"] == [1, 100] and p["annotations"] == [{"at": 50.0, "label": "R peak"}] and p["rate"] == 250


def test_text_is_escaped_in_markup_and_in_the_data_block():
    evil = "</script><script>alert(1)</script><img src=x onerror=alert(2)>"
    fragment = viewer_html(np.zeros((4, 4)), {evil: np.ones((4, 4))}, title=evil, alt=evil, note=evil,
                           viewer_id="v1")
    assert "<script>alert" not in fragment and "<img" not in fragment
    block = re.search(r'class="ml-data">(.*?)</script>', fragment, re.S).group(1)
    assert "<" not in block and ">" not in block
    assert _payload(fragment)["maps"][0]["name"] == evil  # the name survives, as text


def test_bad_input():
    with pytest.raises(InputError, match="at least one map"):
        viewer_html(np.zeros((4, 4)), {})
    with pytest.raises(InputError, match="shape"):
        viewer_html(np.zeros((4, 4)), {"m": np.zeros((4, 5))})
    with pytest.raises(InputError, match="1D signals, 2D images and 3D volumes"):
        viewer_html(np.zeros((2, 2, 2, 2)), {"m": np.zeros((2, 2, 2, 2))})
    with pytest.raises(InputError, match="NaN"):
        viewer_html(np.full((3, 3), np.nan), {"m": np.zeros((3, 3))})


def test_page_carries_assets_once_and_a_csp_that_allows_only_the_viewer_script():
    report = Report("t")
    report.section("a").add_viewer(viewer_html(np.zeros((4, 4)), {"m": np.ones((4, 4))}))
    report.section("b").add_viewer(viewer_html(np.ones((4, 4)), {"m": np.ones((4, 4))}))
    page = report.render()
    assert page.count(viewer_assets()) == 1
    assert f"script-src {viewer_script_hash()}" in page and "default-src 'none'" in page
    assert not re.search(r'(src|href)\s*=\s*["\']?https?:', page)
    plain = Report("t").render()
    assert "script-src 'none'" in plain and "<script" not in plain


@pytest.mark.slow
def test_a_256x256x128_ct_with_three_methods_stays_under_15_mb():
    """A CT-like volume (body outline, organs, noise of 20 HU) and three maps of different
    character: smooth (Grad-CAM-like), blob (occlusion-like), noisy (gradient-like)."""
    rng = np.random.default_rng(0)
    d, h, w = 128, 256, 256
    z, y, x = np.ogrid[:d, :h, :w]
    body = ((y - 128) / 110.0) ** 2 + ((x - 128) / 90.0) ** 2 < 1
    ct = np.where(body, 40.0, -1000.0) + np.where(((y - 120) / 30.0) ** 2 + ((x - 90) / 25.0) ** 2 < 1, 20, 0)
    ct = ct + np.zeros((d, 1, 1)) + rng.normal(0, 20, size=(d, h, w))
    smooth = np.exp(-(((z - 64) / 30.0) ** 2 + ((y - 120) / 40.0) ** 2 + ((x - 90) / 40.0) ** 2))
    blob = (np.abs(z - 60) < 10) & (np.abs(y - 100) < 24) & (np.abs(x - 150) < 24)
    noisy = smooth * rng.normal(size=(d, h, w))
    t0 = time.perf_counter()
    fragment = viewer_html(ct, {"gradcam": smooth, "occlusion": blob.astype(float), "gradient": noisy},
                           spacing=(2.0, 0.8, 0.8), window=(-160, 240))
    seconds = time.perf_counter() - t0
    size_mb = len(fragment.encode()) / 2**20
    print(f"256x256x128 CT + 3 maps: {size_mb:.2f} MB in {seconds:.1f} s")
    assert size_mb < 15
