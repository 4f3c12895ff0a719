"""Tests of medlens.data loaders: bundled real data, npz, ECG5000 text, DICOM, NIfTI.

Everything is offline: the bundled files, DICOM files shipped inside pydicom and nibabel's test
data. Synthetic files are written under ``tmp_path``.
"""

from __future__ import annotations

import os
import pathlib
import random
import shutil
import subprocess
import sys

import nibabel as nib
import numpy as np
import pydicom
import pytest
import torch
from nibabel.testing import data_path as NIB_DATA
from pydicom.data import get_testdata_file

from medlens.data import (
    BUNDLED,
    LabelledSet,
    Volume,
    bundled_path,
    load_dataset,
    load_dicom,
    load_ecg5000,
    load_nifti,
    load_npz,
    to_model_input,
)
from medlens.errors import FileFormatError, InputError, UnknownNameError

CT_SMALL = get_testdata_file("CT_small.dcm")
MR_SMALL = get_testdata_file("MR_small.dcm")


# --------------------------------------------------------------------------------------------
# Bundled MedMNIST
# --------------------------------------------------------------------------------------------

MEDMNIST_SIZES = {
    ("pneumoniamnist", "train"): 2428,
    ("pneumoniamnist", "val"): 270,
    ("pneumoniamnist", "test"): 468,
    ("breastmnist", "train"): 546,
    ("breastmnist", "val"): 78,
    ("breastmnist", "test"): 156,
}


@pytest.mark.parametrize(("name", "split"), sorted(MEDMNIST_SIZES))
def test_bundled_medmnist_matches_raw_file(name, split):
    ds = load_dataset(name, split)
    n = MEDMNIST_SIZES[(name, split)]
    assert isinstance(ds, LabelledSet)
    assert len(ds) == n
    assert ds.name == f"{name}/{split}"
    assert ds.inputs.shape == (n, 1, 28, 28) and ds.inputs.dtype == torch.float32
    assert ds.labels.shape == (n,) and ds.labels.dtype == torch.int64
    assert ds.masks is None
    assert ds.class_names == BUNDLED[name].class_names and len(ds.class_names) == 2
    assert float(ds.inputs.min()) >= 0.0 and float(ds.inputs.max()) <= 1.0
    assert set(ds.labels.unique().tolist()) == {0, 1}

    with np.load(bundled_path(name)) as raw:
        images, labels = raw[f"{split}_images"], raw[f"{split}_labels"]
    # the documented label layouts: pneumonia (N, 1), breast (N,)
    assert labels.shape == ((n, 1) if name == "pneumoniamnist" else (n,))
    assert np.array_equal(np.bincount(labels.reshape(-1)), np.bincount(ds.labels.numpy()))
    assert np.array_equal(ds.labels.numpy(), labels.reshape(-1).astype(np.int64))
    assert np.allclose(ds.inputs[:, 0].numpy() * 255.0, images, atol=1e-3)


def test_bundled_files_and_licences_are_packaged():
    for name in BUNDLED:
        p = bundled_path(name)
        assert isinstance(p, pathlib.Path) and p.is_file()
    licences = bundled_path("LICENSES.md").read_text(encoding="utf-8")
    for needle in ("CC BY 4.0", "MedMNIST", "UCR", "PhysioNet", "ECG5000_TRAIN.txt"):
        assert needle in licences
    with pytest.raises(UnknownNameError, match=r"bundled data sets"):
        bundled_path("mnist")


def test_load_dataset_rejects_unknown_names_and_splits():
    with pytest.raises(UnknownNameError, match=r"'chestmnist'.*pneumoniamnist"):
        load_dataset("chestmnist", "test")
    with pytest.raises(UnknownNameError, match=r"split 'valid'.*train, val, test"):
        load_dataset("breastmnist", "valid")
    assert len(load_dataset("PneumoniaMNIST", "val")) == 270


# --------------------------------------------------------------------------------------------
# ECG5000
# --------------------------------------------------------------------------------------------


def _raw_ecg() -> np.ndarray:
    return np.loadtxt(bundled_path("ecg5000"))


def test_ecg5000_splits_cover_the_file_and_match_its_labels():
    raw = _raw_ecg()
    assert raw.shape == (500, 141)
    parts = {s: load_ecg5000(split=s) for s in ("train", "val", "test")}
    assert sum(len(p) for p in parts.values()) == 500
    for split, part in parts.items():
        assert part.name == f"ecg5000/{split}"
        assert part.inputs.shape == (len(part), 1, 140) and part.inputs.dtype == torch.float32
        assert part.class_names == ("normal", "abnormal")
        # locate each returned beat in the raw file (beats are unique) and compare its label
        sig = part.inputs[:, 0].double().numpy()
        dist = ((sig[:, None, :] - raw[None, :, 1:]) ** 2).sum(-1)
        rows = dist.argmin(1)
        assert np.allclose(dist[np.arange(len(rows)), rows], 0.0, atol=1e-8)
        expected = (raw[rows, 0] != 1).astype(np.int64)
        assert np.array_equal(part.labels.numpy(), expected)
        parts[split] = rows
    all_rows = np.concatenate(list(parts.values()))
    assert np.array_equal(np.sort(all_rows), np.arange(500))  # disjoint and complete


def test_ecg5000_split_is_reproducible_seeded_and_stratified():
    a = load_ecg5000(split="test", seed=3)
    b = load_ecg5000(split="test", seed=3)
    c = load_ecg5000(split="test", seed=4)
    assert torch.equal(a.inputs, b.inputs) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.inputs, c.inputs)

    overall = np.bincount(_raw_ecg()[:, 0].astype(int) - 1, minlength=5)
    fractions = (0.7, 0.15, 0.15)
    for split, frac in zip(("train", "val", "test"), fractions, strict=True):
        fine = load_ecg5000(split=split, binary=False, seed=3)
        counts = np.bincount(fine.labels.numpy(), minlength=5)
        assert np.all(np.abs(counts - frac * overall) <= 1.0)  # per-class rounding only
    sizes = [len(load_ecg5000(split=s)) for s in ("train", "val", "test")]
    assert abs(sizes[0] - 350) <= 3 and abs(sizes[1] - 75) <= 3 and abs(sizes[2] - 75) <= 3


def test_ecg5000_five_class_labels_and_all_split():
    raw = _raw_ecg()
    full = load_ecg5000(split="all", binary=False)
    assert len(full) == 500 and len(full.class_names) == 5
    assert np.array_equal(full.labels.numpy(), raw[:, 0].astype(np.int64) - 1)
    assert np.allclose(full.inputs[:, 0].numpy(), raw[:, 1:], atol=1e-6)
    binary = load_ecg5000(split="all")
    assert int(binary.labels.sum()) == 500 - 292


def test_ecg5000_errors(tmp_path):
    with pytest.raises(FileFormatError, match=r"not found"):
        load_ecg5000(tmp_path / "missing.txt")
    bad = tmp_path / "bad.txt"
    bad.write_text("1.0 0.5 0.25\n2.0 0.1 oops\n")
    with pytest.raises(FileFormatError, match=r"line 2: cannot parse 'oops'"):
        load_ecg5000(bad)
    ragged = tmp_path / "ragged.txt"
    ragged.write_text("1.0 0.5 0.25\n\n2.0 0.1\n")
    with pytest.raises(FileFormatError, match=r"line 3 has 2 values but line 1 has 3"):
        load_ecg5000(ragged)
    wrong_class = tmp_path / "class.txt"
    wrong_class.write_text("1.0 0.5\n7.0 0.1\n")
    with pytest.raises(FileFormatError, match=r"class 7"):
        load_ecg5000(wrong_class)
    with pytest.raises(UnknownNameError, match=r"split 'dev'"):
        load_ecg5000(split="dev")
    with pytest.raises(InputError, match=r"sum to 1"):
        load_ecg5000(fractions=(0.5, 0.2, 0.2))


# --------------------------------------------------------------------------------------------
# npz
# --------------------------------------------------------------------------------------------


def test_npz_signals_with_masks_and_class_names(tmp_path):
    rng = np.random.default_rng(0)
    signals = rng.normal(size=(6, 2, 50)).astype(np.float64)
    masks = rng.random((6, 50)) > 0.5  # stored (N, L): normalised to (N, 1, L)
    labels = np.array([0, 1, 2, 1, 0, 2], dtype=np.uint8)
    path = tmp_path / "sig.npz"
    np.savez(
        path,
        train_signals=signals,
        train_labels=labels,
        train_masks=masks,
        class_names=np.array(["a", "b", "c"]),
    )
    ds = load_npz(path, "train")
    assert ds.name == "sig/train"
    assert ds.inputs.shape == (6, 2, 50) and ds.inputs.dtype == torch.float32
    assert np.allclose(ds.inputs.numpy(), signals.astype(np.float32))  # kept as stored
    assert ds.masks is not None and ds.masks.shape == (6, 1, 50)
    assert ds.masks.dtype == torch.float32
    assert np.array_equal(ds.masks[:, 0].numpy(), masks.astype(np.float32))
    assert ds.labels.tolist() == labels.tolist() and ds.class_names == ("a", "b", "c")
    # the same through load_dataset with a path
    assert torch.equal(load_dataset(str(path), "train").labels, ds.labels)


def test_npz_images_layouts_and_column_labels(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "img.npz"
    rgb = rng.integers(0, 256, size=(4, 8, 9, 3), dtype=np.uint8)
    vol = rng.integers(0, 256, size=(3, 5, 6, 7), dtype=np.uint8)
    grey_float = rng.random((2, 8, 8)).astype(np.float32) * 3.0
    np.savez(
        path,
        train_images=rgb,
        train_labels=np.array([[0], [1], [1], [0]], dtype=np.uint8),  # (N, 1)
        train_masks=np.ones((4, 1, 8, 9), dtype=bool),
        val_images=vol,
        val_labels=np.array([2, 0, 1]),
        test_images=grey_float,
        test_labels=np.array([0.0, 1.0]),
    )
    tr = load_npz(path, "train")
    assert tr.inputs.shape == (4, 3, 8, 9)
    assert np.allclose(tr.inputs.numpy(), np.moveaxis(rgb, -1, 1) / 255.0)
    assert tr.labels.shape == (4,) and tr.labels.tolist() == [0, 1, 1, 0]
    assert tr.class_names == ("0", "1")
    assert tr.masks is not None and tr.masks.shape == (4, 1, 8, 9)
    va = load_npz(path, "val")
    assert va.inputs.shape == (3, 1, 5, 6, 7)  # 4-D, last dim not 1 or 3 -> volume
    te = load_npz(path, "test")
    assert te.inputs.shape == (2, 1, 8, 8)
    assert np.array_equal(te.inputs[:, 0].numpy(), grey_float)  # float kept as is

    # spatial_dims=3 forces a volume even when the last axis is 3
    path3 = tmp_path / "vol.npz"
    np.savez(
        path3, train_images=np.zeros((2, 4, 4, 3), np.uint8), train_labels=[0, 1], spatial_dims=3
    )
    assert load_npz(path3, "train").inputs.shape == (2, 1, 4, 4, 3)


def test_npz_tokens(tmp_path):
    path = tmp_path / "tok.npz"
    tokens = np.array([[1, 5, 7, 0], [2, 2, 9, 3]], dtype=np.int32)
    np.savez(path, test_tokens=tokens, test_labels=[1, 0], test_masks=np.eye(2, 4))
    ds = load_npz(path, "test")
    assert ds.inputs.dtype == torch.int64 and ds.inputs.shape == (2, 4)
    assert ds.inputs.tolist() == tokens.tolist()
    assert ds.masks is not None and ds.masks.shape == (2, 1, 4)


def test_npz_errors(tmp_path):
    good = tmp_path / "d.npz"
    np.savez(
        good,
        train_images=np.zeros((3, 4, 4), np.uint8),
        train_labels=[0, 1, 0],
        val_images=np.zeros((1, 4, 4), np.uint8),
        val_labels=[0],
    )
    with pytest.raises(FileFormatError, match=r"no split 'test'; available splits: train, val"):
        load_npz(good, "test")
    with pytest.raises(FileFormatError, match=r"not found"):
        load_npz(tmp_path / "nope.npz", "train")

    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(random.Random(0).randbytes(2000))
    with pytest.raises(FileFormatError, match=r"corrupt.npz is not a valid .npz"):
        load_npz(corrupt, "train")
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(good.read_bytes()[:300])
    with pytest.raises(FileFormatError, match=r"truncated.npz"):
        load_npz(truncated, "train")

    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, train_images=np.array([object(), 1], dtype=object), train_labels=[0, 1])
    with pytest.raises(FileFormatError, match=r"pickled.npz holds object"):
        load_npz(pickled, "train")
    npy = tmp_path / "single.npz"
    with open(npy, "wb") as fh:
        np.save(fh, np.zeros(3))
    with pytest.raises(FileFormatError, match=r"single .npy array"):
        load_npz(npy, "train")

    nan = tmp_path / "nan.npz"
    sig = np.zeros((2, 1, 5), np.float32)
    sig[1, 0, 3] = np.nan
    np.savez(nan, train_signals=sig, train_labels=[0, 1])
    with pytest.raises(InputError, match=r"nan.npz\['train_signals'\] holds 1 NaN"):
        load_npz(nan, "train")

    mismatch = tmp_path / "mismatch.npz"
    np.savez(mismatch, train_images=np.zeros((3, 4, 4), np.uint8), train_labels=[0, 1])
    with pytest.raises(InputError, match=r"2 labels but there are 3 inputs"):
        load_npz(mismatch, "train")

    nolabels = tmp_path / "nolabels.npz"
    np.savez(nolabels, train_images=np.zeros((3, 4, 4), np.uint8))
    with pytest.raises(FileFormatError, match=r"no train_labels"):
        load_npz(nolabels, "train")

    badmask = tmp_path / "badmask.npz"
    np.savez(
        badmask,
        train_images=np.zeros((3, 4, 4), np.uint8),
        train_labels=[0, 1, 0],
        train_masks=np.zeros((3, 5, 5)),
    )
    with pytest.raises(InputError, match=r"train_masks.*expected"):
        load_npz(badmask, "train")

    multilabel = tmp_path / "multi.npz"
    np.savez(multilabel, train_images=np.zeros((3, 4, 4), np.uint8), train_labels=np.zeros((3, 2)))
    assert load_npz(multilabel, "train").labels.shape == (3, 2)  # one 0/1 column per finding (ChestMNIST)
    np.savez(multilabel, train_images=np.zeros((3, 4, 4), np.uint8), train_labels=np.full((3, 2), 2))
    with pytest.raises(InputError, match=r"shape \(3, 2\).*0 \(absent\) or 1"):
        load_npz(multilabel, "train")

    with pytest.raises(UnknownNameError, match=r"nofile"):
        load_dataset("nofile", "train")


# --------------------------------------------------------------------------------------------
# DICOM
# --------------------------------------------------------------------------------------------


def test_dicom_ct_hounsfield_units_and_identifiers():
    ds = pydicom.dcmread(CT_SMALL)
    expected = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(
        ds.RescaleIntercept
    )
    vol = load_dicom(CT_SMALL)
    assert isinstance(vol, Volume)
    assert vol.array.shape == (128, 128) and vol.array.dtype == torch.float32
    assert np.array_equal(vol.array.numpy(), expected.astype(np.float32))
    assert float(ds.RescaleIntercept) == -1024.0 and float(vol.array.min()) < 0  # HU, not raw
    assert vol.spacing == pytest.approx((0.661468, 0.661468))
    assert vol.metadata["Modality"] == "CT"
    assert vol.metadata["Rows"] == "128" and vol.metadata["Columns"] == "128"
    assert vol.identifiers["PatientName"] == str(ds.PatientName)
    assert vol.identifiers["PatientID"] == "1CT1"
    assert "InstitutionName" in vol.identifiers
    assert "PatientName" not in vol.metadata
    assert not set(vol.metadata) & set(vol.identifiers)
    joined = " ".join(vol.metadata.values())
    for secret in ("CompressedSamples", "1CT1", "JFK IMAGING", "20040119", ds.StudyInstanceUID):
        assert secret not in joined
    assert "CompressedSamples" not in repr(vol)


def test_dicom_mr_without_rescale():
    ds = pydicom.dcmread(MR_SMALL)
    vol = load_dicom(MR_SMALL)
    assert vol.array.shape == (64, 64)
    assert np.array_equal(vol.array.numpy(), ds.pixel_array.astype(np.float32))
    assert vol.spacing == pytest.approx((0.3125, 0.3125))
    assert vol.metadata["Modality"] == "MR"


def test_dicom_window_closed_form():
    hu = load_dicom(CT_SMALL).array.double().numpy()
    center, width = 40.0, 400.0
    vol = load_dicom(CT_SMALL, window=(center, width))
    expected = np.clip((hu - (center - width / 2)) / width, 0.0, 1.0)
    assert np.allclose(vol.array.numpy(), expected, atol=1e-6)
    assert float(vol.array.min()) == 0.0 and float(vol.array.max()) == 1.0
    with pytest.raises(InputError, match=r"width"):
        load_dicom(CT_SMALL, window=(40.0, 0.0))


def _write_series(folder, positions, *, orientation=None, instance=None, uid=None, names=None):
    """Copies of CT_small.dcm, slice k has pixel values + 10 * k and the given position."""
    folder.mkdir(exist_ok=True)
    base = pydicom.dcmread(CT_SMALL).pixel_array.astype(np.int16)
    order = list(range(len(positions)))
    random.Random(7).shuffle(order)  # file names in shuffled order
    for k, pos in enumerate(positions):
        ds = pydicom.dcmread(CT_SMALL)
        arr = base + np.int16(10 * k)
        ds.PixelData = arr.tobytes()
        ds.ImagePositionPatient = [float(v) for v in pos]
        if orientation is not None:
            ds.ImageOrientationPatient = list(orientation)
        ds.InstanceNumber = instance[k] if instance is not None else k + 1
        ds.SOPInstanceUID = pydicom.uid.generate_uid(entropy_srcs=[str(k)])
        if uid is not None:
            ds.SeriesInstanceUID = uid[k]
        name = names[k] if names else f"img{order[k]:03d}.dcm"
        ds.save_as(folder / name)
    return base.astype(np.float64) - 1024.0


def test_dicom_series_sorted_by_position(tmp_path):
    # axial slices; the slice positions on disk are shuffled and InstanceNumber disagrees with
    # position, so only sorting on ImagePositionPatient gives z = -10, -7.5, -5, -2.5, 0
    zs = [-5.0, 0.0, -10.0, -2.5, -7.5]
    hu = _write_series(tmp_path / "s", [(-158.1, -179.0, z) for z in zs], instance=[5, 4, 3, 2, 1])
    (tmp_path / "s" / "notes.txt").write_text("not dicom")  # clearly not DICOM: skipped
    vol = load_dicom(tmp_path / "s")
    assert vol.array.shape == (5, 128, 128)
    assert vol.spacing == pytest.approx((2.5, 0.661468, 0.661468))
    want = np.argsort(zs)  # slice k holds hu + 10 * k
    for d, k in enumerate(want):
        assert np.array_equal(vol.array[d].numpy(), (hu + 10 * k).astype(np.float32))
    assert vol.identifiers["PatientID"] == "1CT1"
    assert "PatientName" not in vol.metadata


def test_dicom_series_oblique_uses_slice_normal(tmp_path):
    # coronal slices: rows along +x, columns along -z, so the normal is +y; z is constant and
    # x varies to make a sort on any single coordinate other than y wrong.
    ys = [4.0, -2.0, 1.0, 7.0]
    xs = [0.0, 9.0, -3.0, 2.0]
    hu = _write_series(
        tmp_path / "c",
        [(x, y, 5.0) for x, y in zip(xs, ys, strict=True)],
        orientation=[1, 0, 0, 0, 0, -1],
    )
    vol = load_dicom(tmp_path / "c")
    for d, k in enumerate(np.argsort(ys)):
        assert np.array_equal(vol.array[d].numpy(), (hu + 10 * k).astype(np.float32))
    assert vol.spacing[0] == pytest.approx(3.0)


def test_dicom_series_falls_back_to_instance_number(tmp_path):
    hu = _write_series(tmp_path / "i", [(0.0, 0.0, float(z)) for z in range(3)], instance=[2, 3, 1])
    for f in (tmp_path / "i").iterdir():
        ds = pydicom.dcmread(f)
        del ds.ImagePositionPatient
        ds.save_as(f)
    vol = load_dicom(tmp_path / "i")
    for d, k in enumerate([2, 0, 1]):  # InstanceNumber 1, 2, 3
        assert np.array_equal(vol.array[d].numpy(), (hu + 10 * k).astype(np.float32))
    assert vol.spacing[0] == pytest.approx(5.0)  # SpacingBetweenSlices of CT_small


def test_dicom_real_two_slice_series_from_nibabel(tmp_path):
    folder = tmp_path / "mr"
    folder.mkdir()
    for name in ("1.dcm", "0.dcm"):
        shutil.copy(os.path.join(NIB_DATA, name), folder / name)
    vol = load_dicom(folder)
    first = pydicom.dcmread(os.path.join(NIB_DATA, "0.dcm"))
    assert vol.array.shape == (2, 256, 256)
    assert np.array_equal(vol.array[0].numpy(), first.pixel_array.astype(np.float32))
    assert vol.spacing[0] == pytest.approx(3.0, abs=1e-3)  # positions differ by 2.99996 mm


def test_dicom_errors(tmp_path):
    with pytest.raises(FileFormatError, match=r"not found"):
        load_dicom(tmp_path / "missing.dcm")

    corrupt = tmp_path / "corrupt.dcm"
    corrupt.write_bytes(random.Random(1).randbytes(4096))
    with pytest.raises(FileFormatError, match=r"corrupt.dcm"):
        load_dicom(corrupt)
    text = tmp_path / "report.txt"
    text.write_text("Patient: nobody\nFindings: none\n")
    with pytest.raises(FileFormatError, match=r"report.txt is not a DICOM file"):
        load_dicom(text)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileFormatError, match=r"no DICOM files in folder"):
        load_dicom(empty)

    (tmp_path / "mixed").mkdir()
    _write_series(
        tmp_path / "mixed", [(0, 0, 0), (0, 0, 1), (0, 0, 2)], uid=["1.2.3.1", "1.2.3.2", "1.2.3.1"]
    )
    with pytest.raises(FileFormatError, match=r"holds 2 series"):
        load_dicom(tmp_path / "mixed")

    bad_in_folder = tmp_path / "withjunk"
    _write_series(bad_in_folder, [(0, 0, 0), (0, 0, 1)])
    shutil.copy(corrupt, bad_in_folder / "slice99")
    with pytest.raises(FileFormatError, match=r"slice99"):
        load_dicom(bad_in_folder)

    shapes = tmp_path / "shapes"
    _write_series(shapes, [(0, 0, 0), (0, 0, 1)], names=["a.dcm", "b.dcm"])
    ds = pydicom.dcmread(shapes / "b.dcm")
    ds.Rows, ds.Columns = 64, 256
    ds.save_as(shapes / "b.dcm")
    with pytest.raises(FileFormatError, match=r"same shape"):
        load_dicom(shapes)

    same = tmp_path / "same"
    _write_series(same, [(0, 0, 0), (0, 0, 0)])
    with pytest.raises(FileFormatError, match=r"same slice position"):
        load_dicom(same)

    nopix = tmp_path / "nopix.dcm"
    ds = pydicom.dcmread(CT_SMALL)
    del ds.PixelData
    ds.save_as(nopix)
    with pytest.raises(FileFormatError, match=r"nopix.dcm has no pixel data"):
        load_dicom(nopix)


# --------------------------------------------------------------------------------------------
# NIfTI
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["anatomical.nii", "standard.nii.gz", "reoriented_anat_moved.nii"])
def test_nifti_matches_nibabel(name):
    path = os.path.join(NIB_DATA, name)
    img = nib.load(path)
    vol = load_nifti(path)
    assert tuple(vol.array.shape) == img.shape
    assert vol.array.dtype == torch.float32
    assert vol.spacing == pytest.approx(tuple(float(z) for z in img.header.get_zooms()))
    assert np.array_equal(vol.array.numpy(), img.get_fdata(dtype=np.float32))
    assert vol.metadata["AxisCodes"] == "".join(nib.aff2axcodes(img.affine))


@pytest.mark.parametrize("name", ["example4d.nii.gz", "example_nifti2.nii.gz"])
def test_nifti_4d_stack_of_two_volumes_is_read_as_two_channels(name):
    img = nib.load(os.path.join(NIB_DATA, name))
    vol = load_nifti(os.path.join(NIB_DATA, name))
    assert vol.channels == 2 and tuple(vol.array.shape) == (2, *img.shape[:3])
    assert np.array_equal(vol.array.numpy(), np.moveaxis(img.get_fdata(dtype=np.float32), -1, 0))


def test_nifti_long_4d_series_is_rejected():
    with pytest.raises(FileFormatError, match=r"4-D series"):
        load_nifti(os.path.join(NIB_DATA, "functional.nii"))  # 20 volumes: a time series, not channels


def test_nifti_round_trip_and_singleton_4d(tmp_path):
    rng = np.random.default_rng(2)
    arr = rng.normal(size=(7, 6, 5)).astype(np.float32)
    affine = np.diag([0.8, 1.25, 3.0, 1.0])
    path = tmp_path / "vol.nii.gz"
    nib.save(nib.Nifti1Image(arr, affine), path)
    vol = load_nifti(path)
    assert np.array_equal(vol.array.numpy(), arr)  # exact
    assert vol.spacing == pytest.approx((0.8, 1.25, 3.0))

    path4 = tmp_path / "single.nii"
    nib.save(nib.Nifti2Image(arr[..., None], affine), path4)
    vol4 = load_nifti(path4)
    assert vol4.array.shape == (7, 6, 5) and vol4.metadata["Format"] == "NIfTI-2"
    assert np.array_equal(vol4.array.numpy(), arr)


def test_nifti_errors(tmp_path):
    with pytest.raises(FileFormatError, match=r"not found"):
        load_nifti(tmp_path / "missing.nii")
    corrupt = tmp_path / "corrupt.nii"
    corrupt.write_bytes(random.Random(3).randbytes(1000))
    with pytest.raises(FileFormatError, match=r"corrupt.nii"):
        load_nifti(corrupt)
    good = tmp_path / "good.nii"
    nib.save(nib.Nifti1Image(np.ones((8, 8, 8), np.float32), np.eye(4)), good)
    truncated = tmp_path / "truncated.nii"
    truncated.write_bytes(good.read_bytes()[:600])
    with pytest.raises(FileFormatError, match=r"truncated.nii"):
        load_nifti(truncated)
    with pytest.raises(FileFormatError, match=r"not a NIfTI image"):
        load_nifti(os.path.join(NIB_DATA, "analyze.hdr"))


# --------------------------------------------------------------------------------------------
# to_model_input
# --------------------------------------------------------------------------------------------


def test_to_model_input_shapes_and_errors():
    vol = load_dicom(CT_SMALL)
    x = to_model_input(vol, spatial_dims=2)
    assert x.shape == (1, 1, 128, 128) and x.dtype == torch.float32
    assert torch.equal(x[0, 0], vol.array)
    assert to_model_input(np.zeros((4, 5, 6), np.int16), spatial_dims=3).shape == (1, 1, 4, 5, 6)
    assert to_model_input(torch.zeros(140), spatial_dims=1).shape == (1, 1, 140)
    with pytest.raises(InputError, match=r"3-D array for spatial_dims=3"):
        to_model_input(vol, spatial_dims=3)
    with pytest.raises(InputError, match=r"NaN"):
        to_model_input(torch.tensor([[float("nan")]]), spatial_dims=2)
    with pytest.raises(InputError, match=r"spatial_dims"):
        to_model_input(vol, spatial_dims=4)


def test_importing_medlens_data_does_not_import_pydicom_or_nibabel():
    code = (
        "import sys, medlens.data; "
        "print(sorted(m for m in ('pydicom', 'nibabel') if m in sys.modules))"
    )
    root = pathlib.Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
