"""Preprocessing recipes: closed forms, serialisation, and the inverse geometry round trip."""

from __future__ import annotations

import json

import pytest
import torch

from medlens.data import Signal, Volume
from medlens.data.recipe import Recipe, invert, parse_window, prepare, resample_grid
from medlens.errors import InputError


def _vol(array, fmt="NumPy", spacing=None, **meta) -> Volume:
    array = torch.as_tensor(array, dtype=torch.float32)
    return Volume(array, spacing or (1.0,) * array.ndim, {"Format": fmt, **meta}, format=fmt)


def test_recipe_round_trips_through_dict_json_and_yaml(tmp_path):
    r = Recipe(windows=((40, 80), (80, 200), (600, 2800)), clip_percentiles=(1, 99), normalize="none",
               mean=(0.5,), std=(0.25,), size=(64, 64), spacing=(0.8, 0.8), fit="crop_or_pad")
    assert Recipe.from_dict(r.to_dict()) == r
    assert Recipe.from_dict(json.loads(json.dumps(r.to_dict()))) == r
    (tmp_path / "r.yaml").write_text("windows: [brain, subdural, bone]\nsize: [64, 64]\n")
    y = Recipe.from_file(tmp_path / "r.yaml")
    assert y.windows == ((40.0, 80.0), (80.0, 200.0), (600.0, 2800.0)) and y.size == (64, 64)
    (tmp_path / "r.json").write_text(json.dumps({"fs": 100, "leads": ["II"], "size": [500], "start": 3}))
    s = Recipe.from_file(tmp_path / "r.json")
    assert (s.fs, s.leads, s.size, s.start) == (100.0, ("II",), (500,), 3.0)


@pytest.mark.parametrize("bad, match", [
    ({"windo": [[40, 80]]}, "unknown recipe settings windo"),
    ({"normalize": "softmax"}, "normalize must be one of"),
    ({"windows": [[40, 0]]}, "positive"),
    ({"windows": [[40, 80]], "channels": 3}, "1 windows"),
    ({"size": [28.5, 28]}, "whole numbers"),
    ({"version": 99}, "newer"),
])
def test_recipe_errors_are_one_line(bad, match):
    with pytest.raises(InputError, match=match) as err:
        Recipe.from_dict(bad)
    assert "\n" not in str(err.value)


def test_ct_windows_are_stacked_channels_in_closed_form():
    hu = torch.tensor([[-1000.0, 0.0, 40.0], [80.0, 200.0, 1500.0]])
    x = prepare(_vol(hu), Recipe(windows=(parse_window("brain"), parse_window("subdural"), parse_window("bone")))).x
    assert x.shape == (1, 3, 2, 3)
    for k, (c, w) in enumerate([(40, 80), (80, 200), (600, 2800)]):
        assert torch.allclose(x[0, k], ((hu - (c - w / 2)) / w).clamp(0, 1))


def test_windows_need_hounsfield_units():
    with pytest.raises(InputError, match="PNG picture"):
        prepare(_vol(torch.zeros(4, 4), fmt="PNG"), Recipe(windows=((40, 80),)))
    with pytest.raises(InputError, match="MR DICOM image, not CT"):
        prepare(_vol(torch.zeros(4, 4), fmt="DICOM", Modality="MR"), Recipe(windows=((40, 80),)))


def test_intensity_normalisations_closed_form():
    a = torch.tensor([[0.0, 51.0], [102.0, 255.0]])
    v = _vol(a, fmt="PNG", MaxValue="255")
    assert torch.equal(prepare(v, Recipe(normalize="unit")).x[0, 0], a / 255)
    assert torch.allclose(prepare(v, Recipe(normalize="minmax")).x[0, 0], a / 255)
    z = prepare(v, Recipe(normalize="zscore")).x[0, 0]
    assert torch.allclose(z, (a - a.mean()) / a.std())
    s = prepare(v, Recipe(normalize="unit", mean=(0.5,), std=(0.25,), channels=3)).x[0]
    assert s.shape == (3, 2, 2) and torch.allclose(s[2], (a / 255 - 0.5) / 0.25)
    clipped = prepare(_vol(torch.arange(101.0)), Recipe(clip_percentiles=(10, 90))).x[0, 0]
    assert clipped.min() == 10 and clipped.max() == 90


def test_colour_to_grey_uses_bt601_luma():
    rgb = torch.rand(3, 5, 6, generator=torch.Generator().manual_seed(0))
    v = Volume(rgb, (1.0, 1.0), {"Format": "PNG"}, channels=3, format="PNG")
    grey = prepare(v, Recipe(channels=1)).x[0, 0]
    assert torch.allclose(grey, 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])


@pytest.mark.parametrize("original, factors", [((7, 5), (4, 3)), ((3, 4, 5), (2, 3, 2)), ((9,), (5,))])
def test_map_constant_per_original_pixel_survives_the_round_trip(original, factors):
    # the model grid is finer than the original: a map that is constant over each original
    # pixel's footprint on the model grid comes back exactly, pixel for pixel
    size = tuple(n * f for n, f in zip(original, factors))
    prepared = prepare(_vol(torch.rand(original, generator=torch.Generator().manual_seed(1))), Recipe(size=size))
    assert prepared.x.shape[2:] == size
    m = torch.randn(original, generator=torch.Generator().manual_seed(2))
    blocky = m
    for axis, f in enumerate(factors):
        blocky = blocky.repeat_interleave(f, dim=axis)
    back = invert(prepared.geometry, blocky[None])
    assert back.shape == original and torch.allclose(back, m, atol=1e-6)


def test_downsampled_map_is_interpolated_back_to_the_full_grid():
    prepared = prepare(_vol(torch.rand(64, 48)), Recipe(size=(16, 12)))
    const = torch.full((1, 16, 12), 3.0)
    back = invert(prepared.geometry, const)
    assert back.shape == (64, 48) and torch.allclose(back, torch.full((64, 48), 3.0))
    # linear in the pixel index stays linear after the inverse (away from the borders)
    ramp = torch.arange(12.0).expand(16, 12)[None]
    back = invert(prepared.geometry, ramp)
    assert torch.allclose(back[:, 8:-8].diff(dim=1), torch.full((64, 31), 0.25), atol=1e-5)


def test_crop_or_pad_inverse_puts_the_map_back_in_place_and_zero_outside():
    img = torch.arange(10 * 6.0).reshape(10, 6)
    prepared = prepare(_vol(img), Recipe(size=(6, 10), fit="crop_or_pad"))
    x = prepared.x[0, 0]
    assert torch.equal(x[:, 2:8], img[2:8])  # rows cropped by 2 each side, columns padded by 2
    assert torch.equal(x[:, :2], torch.zeros(6, 2))
    back = invert(prepared.geometry, x[None])
    want = img.clone()
    want[:2], want[8:] = 0, 0  # rows the model never saw get no attribution
    assert torch.equal(back, want)


def test_spacing_resampling_and_its_inverse():
    v = _vol(torch.rand(20, 30, 40), spacing=(2.0, 1.0, 0.5))
    prepared = prepare(v, Recipe(spacing=(2.0, 2.0, 2.0)))
    assert prepared.x.shape[2:] == (20, 15, 10)
    back = invert(prepared.geometry, torch.ones(1, 20, 15, 10))
    assert back.shape == (20, 30, 40) and torch.allclose(back, torch.ones(20, 30, 40))


def test_volume_for_a_2d_model_takes_the_named_slice_and_maps_back_into_it():
    vol = torch.rand(5, 8, 8)
    with pytest.raises(InputError, match=r"takes 2-D images \(8 x 8\) but the input is a 3-D volume .*--slice K, 0\.\.4 along the first axis"):
        prepare(_vol(vol), Recipe(size=(8, 8)))
    prepared = prepare(_vol(vol), Recipe(size=(8, 8), slice=3))
    assert torch.equal(prepared.x[0, 0], vol[3]) and prepared.geometry.slice_index == 3
    back = invert(prepared.geometry, torch.ones(1, 8, 8))
    assert back[3].eq(1).all() and back[[0, 1, 2, 4]].eq(0).all()
    with pytest.raises(InputError, match="--slice 5 is out of range"):
        prepare(_vol(vol), Recipe(size=(8, 8), slice=5))


def test_signal_leads_start_and_rate_map_back_on_the_original_time_axis():
    fs, n = 100.0, 1000
    values = torch.randn(3, n, generator=torch.Generator().manual_seed(0))
    sig = Signal(values, fs, ("I", "II", "V1"))
    recipe = Recipe(leads=("V1", "I"), start=2.5, fs=400.0, size=(400,))
    prepared = prepare(sig, recipe)
    g = prepared.geometry
    assert prepared.x.shape == (1, 2, 400) and g.span == (250, 350) and g.channel_index == (2, 0)
    # a map constant over each original sample (4 model samples at 400 Hz) comes back exactly
    m = torch.randn(2, 100, generator=torch.Generator().manual_seed(3))
    back = invert(g, m.repeat_interleave(4, dim=1))
    assert back.shape == (3, n)
    assert torch.allclose(back[2, 250:350], m[0], atol=1e-6) and torch.allclose(back[0, 250:350], m[1], atol=1e-6)
    assert back[1].eq(0).all() and back[:, :250].eq(0).all() and back[:, 350:].eq(0).all()


def test_signal_errors():
    sig = Signal(torch.zeros(1, 500), 250.0, ("MLII",))
    with pytest.raises(InputError, match="lead 'V5' is not in the record; it has MLII"):
        prepare(sig, Recipe(leads=("V5",)))
    with pytest.raises(InputError, match="runs past the end"):
        prepare(sig, Recipe(size=(400,), start=1.0, fs=250.0))
    with pytest.raises(InputError, match="past the end of the record"):
        prepare(sig, Recipe(start=5.0))


def test_resample_grid_is_the_identity_on_equal_shapes_and_averages_when_shrinking():
    x = torch.randn(2, 6, 4)
    assert resample_grid(x, (6, 4)) is x
    assert torch.allclose(resample_grid(x, (3, 2)), torch.nn.functional.avg_pool2d(x[None], 2)[0])



def test_mask_on_model_grid_follows_the_images_geometry():
    from medlens.data.formats.common import Volume
    from medlens.data.recipe import mask_on_model_grid, prepare

    mask = torch.zeros(8, 12)
    mask[2:6, 4:8] = 1  # a 4x4 finding
    image = Volume(torch.rand(8, 12), (1.0, 1.0), {"MaxValue": "1"}, format="NumPy")
    # resize 8x12 -> 4x6: each model element averages 2x2 pixels, so the finding covers 2x2 elements exactly
    on_grid = mask_on_model_grid(prepare(image, Recipe(size=(4, 6))).geometry, mask)
    want = torch.zeros(4, 6, dtype=torch.bool)
    want[1:3, 2:4] = True
    assert torch.equal(on_grid, want)
    # centre crop to 4x4: the same crop as the image's
    cropped = mask_on_model_grid(prepare(image, Recipe(size=(4, 4), fit="crop_or_pad")).geometry, mask)
    assert torch.equal(cropped, mask[2:6, 4:8].bool())
    # a one-pixel finding, a quarter of a model element, keeps the element it lies in
    dot = torch.zeros(8, 12)
    dot[5, 9] = 1
    small = mask_on_model_grid(prepare(image, Recipe(size=(4, 6))).geometry, dot)
    assert small.sum() == 1 and bool(small[2, 4])
    with pytest.raises(InputError, match=r"the mask has shape \(4, 4\) but the scan is \(8, 12\)"):
        mask_on_model_grid(prepare(image, Recipe(size=(4, 6))).geometry, torch.zeros(4, 4))
