"""A derived series of projections at angles to each other (a rotated MIP, as pydicom's
dicomdirtests MR700) is a set of 2-D images: each its own case, named by its file (tour32).
It was one case refused when read ("a series folder must hold parallel slices")."""

import math

import numpy as np
import pydicom
from pydicom.data import get_testdata_file

from medlens.data.formats.folders import ScanSet, scan_cases
from medlens.data.recipe import Recipe


def _rotated_mips(folder, n=3):
    folder.mkdir(parents=True)
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.ImageType = ["DERIVED", "SECONDARY", "MIP"]
    for k in range(n):
        a = math.radians(30.0 * k)
        ds.ImageOrientationPatient = [math.cos(a), math.sin(a), 0.0, 0.0, 0.0, -1.0]
        ds.ImagePositionPatient = [0.0, 0.0, 0.0]
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.9.7.32.{k + 1}"
        ds.PixelData = np.full((128, 128), 10 * k, dtype=np.int16).tobytes()
        ds.save_as(folder / f"IM{k}")
    return folder


def test_each_rotated_projection_is_a_case_of_its_own(tmp_path):
    _rotated_mips(tmp_path / "PAT" / "MR700")
    cases = scan_cases(tmp_path)
    assert [c.name for c in cases] == ["PAT/MR700/IM0", "PAT/MR700/IM1", "PAT/MR700/IM2"]
    assert not any(c.series for c in cases)


def test_a_folder_of_rotated_projections_given_alone_reads_each(tmp_path):
    folder = _rotated_mips(tmp_path / "MR700")
    scans = ScanSet(folder, Recipe(normalize="minmax", channels=1, size=(16, 16)))
    x, kept, failed = scans.load(range(len(scans)))
    assert failed == {} and kept == [0, 1, 2] and tuple(x.shape) == (3, 1, 16, 16)
