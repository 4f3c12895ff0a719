"""DICOM files of one series lying loose among other files: a volume only when they stack.

Seen on a folder of pydicom's and pydicom-data's test files with a labels CSV naming each file:
MR_small.dcm and its RLE / JPEG-LS / JPEG 2000 copies share a SeriesInstanceUID and lie at the
same position, so the folder walk made them one case ("series6-MR_small") that could never be
read ("lie at the same slice position"), and the labels file naming MR_small.dcm was refused
with "names case 'MR_small.dcm', which is not among the 8 cases of the data".
"""

from __future__ import annotations

import pytest

pydicom = pytest.importorskip("pydicom")

from medlens.data.formats.folders import read_labels, scan_cases  # noqa: E402
from medlens.errors import FileFormatError, InputError  # noqa: E402


def _slice(path, *, series: str, z: float, size: int = 8, instance: int = 1) -> None:
    """One CT slice of ``series`` at height ``z`` (pydicom's CT_small.dcm, cut to ``size``)."""
    import numpy as np
    from pydicom.data import get_testdata_file

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.SeriesInstanceUID = series
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"{series}.{instance}"
    ds.InstanceNumber = instance
    ds.ImagePositionPatient = [0.0, 0.0, float(z)]
    ds.ImageOrientationPatient = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
    ds.Rows = ds.Columns = size
    ds.RescaleIntercept, ds.RescaleSlope = 0, 1
    ds.PixelData = np.full((size, size), 100 + instance, dtype=np.int16).tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_loose_files_of_one_series_at_one_position_are_separate_images(tmp_path):
    for k, name in enumerate(["a.dcm", "a_copy.dcm", "a_again.dcm"]):
        _slice(tmp_path / name, series="1.2.826.0.1.3680043.9.7.1", z=5.0, instance=k + 1)
    _slice(tmp_path / "other.dcm", series="1.2.826.0.1.3680043.9.7.2", z=0.0)
    cases = scan_cases(tmp_path)
    assert [c.name for c in cases] == ["a.dcm", "a_again.dcm", "a_copy.dcm", "other.dcm"]
    assert not any(c.series for c in cases)
    assert [float(c.read().array[0, 0]) for c in cases] == [101.0, 103.0, 102.0, 101.0]
    assert read_labels_of(tmp_path, cases, "a_copy.dcm,1\n") == [None, None, 1, None]


def test_loose_slices_of_different_sizes_are_separate_images(tmp_path):
    _slice(tmp_path / "big.dcm", series="1.2.826.0.1.3680043.9.7.3", z=0.0, size=8)
    _slice(tmp_path / "small.dcm", series="1.2.826.0.1.3680043.9.7.3", z=1.0, size=4, instance=2)
    _slice(tmp_path / "x.dcm", series="1.2.826.0.1.3680043.9.7.4", z=0.0)
    cases = scan_cases(tmp_path)
    assert [(c.name, tuple(c.read().array.shape)) for c in cases] == [("big.dcm", (8, 8)), ("small.dcm", (4, 4)),
                                                                      ("x.dcm", (8, 8))]


def test_loose_slices_that_stack_stay_one_volume(tmp_path):
    for k in range(3):
        _slice(tmp_path / f"s{k}.dcm", series="1.2.826.0.1.3680043.9.7.5", z=2.0 * (2 - k), instance=k + 1)
    _slice(tmp_path / "x.dcm", series="1.2.826.0.1.3680043.9.7.6", z=0.0)
    cases = scan_cases(tmp_path)
    assert [(c.name, c.series) for c in cases] == [("series1-s0", True), ("x.dcm", False)]
    volume = cases[0].read()
    assert tuple(volume.array.shape) == (3, 8, 8)
    assert volume.array[:, 0, 0].tolist() == [103.0, 102.0, 101.0]  # ordered by position, lowest first


def test_a_series_folder_of_twins_is_still_one_case_refused_when_read(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    _slice(folder / "a.dcm", series="1.2.826.0.1.3680043.9.7.7", z=5.0)
    _slice(folder / "b.dcm", series="1.2.826.0.1.3680043.9.7.7", z=5.0, instance=2)
    (case,) = scan_cases(folder)
    assert case.series and case.name == "series"
    with pytest.raises(FileFormatError, match="lie at the same slice position"):
        case.read()


def test_a_labels_file_naming_a_slice_of_a_series_says_how_cases_are_named(tmp_path):
    for k in range(2):
        _slice(tmp_path / f"s{k}.dcm", series="1.2.826.0.1.3680043.9.7.8", z=float(k), instance=k + 1)
    _slice(tmp_path / "x.dcm", series="1.2.826.0.1.3680043.9.7.9", z=0.0)
    cases = scan_cases(tmp_path)
    with pytest.raises(InputError, match=r"names case 's0.dcm'.*the DICOM slices of one series are one case.*seriesK-FIRSTFILE"):
        read_labels_of(tmp_path, cases, "s0.dcm,0\n")
    assert read_labels_of(tmp_path, cases, "series1-s0,1\n") == [1, None]


def read_labels_of(folder, cases, rows: str) -> list:
    labels = folder.parent / f"{folder.name}_labels.csv"
    labels.write_text("case,label\n" + rows)
    return read_labels(labels, [c.name for c in cases])


def test_a_case_with_other_channels_than_the_first_is_named_for_its_channels_not_its_size(tmp_path):
    """Seen training on nibabel's test volumes with --size 16,16,16: example_nifti2.nii.gz (two
    volumes) failed with "becomes a model input of shape (2, 16, 16, 16), others (1, 16, 16, 16):
    give a recipe with a size", although the recipe had one."""
    import nibabel as nib
    import numpy as np

    from medlens.data.formats.folders import ScanSet
    from medlens.data.recipe import Recipe

    rng = np.random.default_rng(0)
    nib.save(nib.Nifti1Image(rng.random((6, 7, 5)).astype(np.float32), np.eye(4)), tmp_path / "a.nii.gz")
    nib.save(nib.Nifti1Image(rng.random((6, 7, 5, 2)).astype(np.float32), np.eye(4)), tmp_path / "b.nii.gz")
    scans = ScanSet(tmp_path, Recipe(normalize="minmax", size=(4, 4, 4)))
    x, kept, failed = scans.load([0, 1])
    assert kept == [0] and tuple(x.shape) == (1, 1, 4, 4, 4)
    assert failed == {1: "b.nii.gz has 2 channels after preprocessing (the volumes of a 4-D image are its channels; "
                         "colour is three), the first readable case 1"}
