"""Tests of the ground-truth lesion benchmark (medlens.data.synthetic.lesions)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from medlens.core.random import generator

from medlens.data import load_dataset
from medlens.data.synthetic.lesions import (
    LESION_SHAPES,
    SPLITS,
    _backgrounds,
    _marker_box,
    make_lesion_benchmark,
    write_lesion_benchmark,
)
from medlens.errors import InputError

SMALL = dict(size=32, n_train=24, n_val=6, n_test=10)


@pytest.fixture(scope="module")
def bench2d():
    return make_lesion_benchmark(spatial_dims=2, shortcut=True, seed=3, **SMALL)


def test_keys_shapes_and_dtypes(bench2d):
    counts = {"train": 24, "val": 6, "test": 10}
    for split in SPLITS:
        n = counts[split]
        assert bench2d[f"{split}_images"].shape == (n, 32, 32)
        assert bench2d[f"{split}_images"].dtype == np.float32
        assert bench2d[f"{split}_images"].min() >= 0 and bench2d[f"{split}_images"].max() <= 1
        assert bench2d[f"{split}_labels"].dtype == np.int64
        assert set(np.unique(bench2d[f"{split}_labels"])) <= {0, 1}
        for key in ("masks", "marker_masks"):
            assert bench2d[f"{split}_{key}"].shape == (n, 32, 32)
            assert bench2d[f"{split}_{key}"].dtype == np.bool_
        assert bench2d[f"{split}_lesion_center"].shape == (n, 2)
        assert bench2d[f"{split}_lesion_center"].dtype == np.float32
        for key in ("radius", "contrast"):
            assert bench2d[f"{split}_lesion_{key}"].shape == (n,)
            assert bench2d[f"{split}_lesion_{key}"].dtype == np.float32
        assert bench2d[f"{split}_lesion_shape"].dtype == np.int64
    assert list(bench2d["class_names"]) == ["no lesion", "lesion"]
    assert tuple(bench2d["lesion_shape_names"]) == LESION_SHAPES
    assert int(bench2d["spatial_dims"]) == 2


def test_prevalence_is_exact_and_metadata_consistent_with_labels(bench2d):
    for split in SPLITS:
        y = bench2d[f"{split}_labels"]
        assert y.sum() == round(len(y) * 0.5)
        has_mask = bench2d[f"{split}_masks"].reshape(len(y), -1).any(1)
        np.testing.assert_array_equal(has_mask, y == 1)
        pos, neg = y == 1, y == 0
        assert np.isnan(bench2d[f"{split}_lesion_center"][neg]).all()
        assert np.isfinite(bench2d[f"{split}_lesion_center"][pos]).all()
        assert (bench2d[f"{split}_lesion_radius"][neg] == 0).all()
        assert (bench2d[f"{split}_lesion_radius"][pos] > 0).all()
        assert (bench2d[f"{split}_lesion_contrast"][neg] == 0).all()
        assert (np.abs(bench2d[f"{split}_lesion_contrast"][pos]) >= 0.25).all()
        assert (bench2d[f"{split}_lesion_shape"][neg] == -1).all()
        assert set(bench2d[f"{split}_lesion_shape"][pos]) <= set(range(len(LESION_SHAPES)))


def test_equivalent_radius_matches_mask_area(bench2d):
    for split in SPLITS:
        pos = bench2d[f"{split}_labels"] == 1
        area = bench2d[f"{split}_masks"][pos].reshape(pos.sum(), -1).sum(1)
        np.testing.assert_allclose(bench2d[f"{split}_lesion_radius"][pos], np.sqrt(area / np.pi), rtol=1e-5)


def test_mask_is_the_exact_support_of_the_change():
    """Regenerate the backgrounds with the split's generator: outside lesion and marker masks the
    image is the untouched background, inside the lesion mask every pixel changed."""
    seed, size, n = 5, 32, 12
    data = make_lesion_benchmark(size=size, n_train=n, n_val=0, n_test=0, seed=seed, shortcut=True)
    gen = generator(seed, "lesion-split", 0)  # the train split's generator
    background = _backgrounds("train", n, 2, size, gen).numpy()
    images, lesion, marker = data["train_images"], data["train_masks"], data["train_marker_masks"]
    outside = ~(lesion | marker)
    np.testing.assert_array_equal(images[outside], background[outside])
    changed = images != background
    # clipping can only leave a pixel unchanged when it was already at the bound
    at_bound = (background == 0) | (background == 1)
    assert (changed | at_bound)[lesion].all()
    assert changed[lesion].mean() > 0.95
    assert (images[marker] == 1.0).all()


def test_round_lesions_are_centred_on_their_centre():
    data = make_lesion_benchmark(size=48, n_train=60, n_val=0, n_test=0, seed=1)
    shapes, centres = data["train_lesion_shape"], data["train_lesion_center"]
    for i in np.flatnonzero(shapes == LESION_SHAPES.index("round")):
        rows, cols = np.nonzero(data["train_masks"][i])
        np.testing.assert_allclose([rows.mean(), cols.mean()], centres[i], atol=0.6)
        # inside the disk of the equivalent radius, give or take a pixel
        dist = np.hypot(rows - centres[i][0], cols - centres[i][1])
        assert dist.max() <= data["train_lesion_radius"][i] + 1.0


def test_shapes_are_varied_and_elongated_lesions_are_elongated():
    data = make_lesion_benchmark(size=48, n_train=90, n_val=0, n_test=0, seed=2)
    shapes = data["train_lesion_shape"]
    assert set(shapes[shapes >= 0]) == set(range(len(LESION_SHAPES)))
    signs = np.sign(data["train_lesion_contrast"][shapes >= 0])
    assert (signs > 0).any() and (signs < 0).any()

    def eig_ratio(mask):
        pts = np.argwhere(mask).astype(float)
        ev = np.linalg.eigvalsh(np.cov(pts.T))
        return math.sqrt(ev[-1] / ev[0])

    elongated = [eig_ratio(data["train_masks"][i]) for i in np.flatnonzero(shapes == 1)]
    round_ = [eig_ratio(data["train_masks"][i]) for i in np.flatnonzero(shapes == 0)]
    assert min(elongated) > 1.3 and max(round_) < 1.2


def test_shortcut_marker_predicts_the_label_in_train_but_not_in_test():
    data = make_lesion_benchmark(size=24, n_train=400, n_val=0, n_test=400, seed=0, shortcut=True, shortcut_rate=0.9)
    box = _marker_box(24, 2)
    for split, (p_pos, p_neg) in {"train": (0.9, 0.1), "test": (0.5, 0.5)}.items():
        y = data[f"{split}_labels"]
        marker = data[f"{split}_marker_masks"]
        present = marker.reshape(len(y), -1).any(1)
        # the marker is exactly the box when present
        assert (marker[present][(slice(None),) + box]).all()
        assert marker[present].reshape(present.sum(), -1).sum(1).max() == marker[present][0][box].size
        # binomial with n=200: 4 standard errors is < 0.15
        assert abs(present[y == 1].mean() - p_pos) < 0.15
        assert abs(present[y == 0].mean() - p_neg) < 0.15
        assert not (marker & data[f"{split}_masks"]).any()


def test_no_shortcut_means_no_marker(bench2d):
    data = make_lesion_benchmark(spatial_dims=2, shortcut=False, seed=3, **SMALL)
    for split in SPLITS:
        assert not data[f"{split}_marker_masks"].any()


def test_seeded_and_splits_independent():
    a = make_lesion_benchmark(size=24, n_train=8, n_val=2, n_test=6, seed=4)
    b = make_lesion_benchmark(size=24, n_train=8, n_val=2, n_test=6, seed=4)
    c = make_lesion_benchmark(size=24, n_train=3, n_val=2, n_test=6, seed=4)
    d = make_lesion_benchmark(size=24, n_train=8, n_val=2, n_test=6, seed=5)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    np.testing.assert_array_equal(a["test_images"], c["test_images"])
    assert not np.array_equal(a["test_images"], d["test_images"])


def test_3d_variant_and_load_dataset_roundtrip(tmp_path):
    path = write_lesion_benchmark(tmp_path / "les3d", spatial_dims=3, size=24, n_train=6, n_val=2, n_test=4, seed=0)
    assert path.name == "les3d.npz" and path.exists()
    with np.load(path) as raw:
        assert raw["train_images"].shape == (6, 24, 24, 24)
        assert int(raw["spatial_dims"]) == 3
        pos = raw["train_labels"] == 1
        vol = raw["train_masks"][pos].reshape(pos.sum(), -1).sum(1)
        np.testing.assert_allclose(raw["train_lesion_radius"][pos], (3 * vol / (4 * np.pi)) ** (1 / 3), rtol=1e-5)
        assert raw["train_lesion_center"].shape == (6, 3)
        # a lesion is a 3D blob: it spans several slices
        assert all(np.ptp(np.nonzero(m)[0]) >= 2 for m in raw["train_masks"][pos])
    test = load_dataset(path, "test")
    assert test.inputs.shape == (4, 1, 24, 24, 24)
    assert test.masks.shape == (4, 1, 24, 24, 24)
    assert test.class_names == ("no lesion", "lesion")


def test_2d_file_roundtrip_matches_arrays(tmp_path):
    kwargs = dict(size=24, n_train=4, n_val=2, n_test=4, seed=7, shortcut=True)
    path = write_lesion_benchmark(tmp_path / "les.npz", **kwargs)
    arrays = make_lesion_benchmark(**kwargs)
    test = load_dataset(path, "test")
    np.testing.assert_array_equal(test.inputs[:, 0].numpy(), arrays["test_images"])
    np.testing.assert_array_equal(test.masks[:, 0].numpy() > 0, arrays["test_masks"])
    np.testing.assert_array_equal(test.labels.numpy(), arrays["test_labels"])
    assert not list(tmp_path.glob("*partial*"))


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(spatial_dims=1),
        dict(spatial_dims=4),
        dict(size=8),
        dict(n_train=-1),
        dict(shortcut_rate=1.5),
        dict(prevalence=-0.1),
    ],
)
def test_bad_arguments_raise_input_error(kwargs):
    with pytest.raises(InputError):
        make_lesion_benchmark(**{**dict(n_train=2, n_val=0, n_test=0, size=24), **kwargs})
