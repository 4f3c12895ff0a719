"""A DICOM CT series whose slices do not make a regular grid is never read silently (tour20): a
missing slice, uneven spacing and gantry tilt (as in neurolabusc/dcm_qa_ct's real Philips and GE
series) each warn with their numbers, and the affine's slice step is the spacing the volume says."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

from medlens.data.formats.dicom import load_dicom


def _series(folder, positions, orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0)):
    folder.mkdir()
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.ImageOrientationPatient = list(orientation)
    for k, position in enumerate(positions):
        ds.ImagePositionPatient = list(position)
        ds.InstanceNumber = k + 1
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.9.7.20.{k + 1}"
        ds.PixelData = np.full((128, 128), 10 * k, dtype=np.int16).tobytes()
        ds.save_as(folder / f"{k}.dcm")
    return folder


def _read(folder):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        volume = load_dicom(folder)
    return volume, [str(w.message) for w in seen]


def _step_along_normal(volume):
    return abs(np.array(volume.affine)[2, 0])  # the slice step's z part (RAS and LPS share z; z is the normal here)


def test_a_missing_slice_is_named_and_the_affine_keeps_the_spacing(tmp_path):
    z = [0.0, 2.5, 5.0, 10.0, 12.5, 15.0]  # the slice at 7.5 mm is missing
    volume, said = _read(_series(tmp_path / "ct", [(0.0, 0.0, v) for v in z]))
    assert volume.spacing[0] == pytest.approx(2.5)
    assert len(said) == 1 and "has 1 slice missing (a gap of 5.000 mm after slice 3 where the others are 2.500 mm)" in said[0]
    assert _step_along_normal(volume) == pytest.approx(2.5)  # not the mean step 3.0 the affine had


def test_uneven_spacing_warns_with_its_range(tmp_path):
    z = np.cumsum([0.0, 1.08, 4.2, 7.0, 1.1, 4.2])  # a GE series with variable slice distances
    volume, said = _read(_series(tmp_path / "ct", [(0.0, 0.0, v) for v in z]))
    assert len(said) == 1 and "irregular slice spacing (1.080 to 7.000 mm); using the median 4.200 mm" in said[0]
    assert _step_along_normal(volume) == pytest.approx(volume.spacing[0])


def test_gantry_tilt_is_said_with_its_angle_and_shear(tmp_path):
    tilt = math.radians(18.5)  # the Philips series: rows tilted, slices stacked along the scanner's z
    orientation = (1.0, 0.0, 0.0, 0.0, math.cos(tilt), -math.sin(tilt))
    volume, said = _read(_series(tmp_path / "ct", [(0.0, 0.0, 2.5 * k) for k in range(5)], orientation))
    assert volume.spacing[0] == pytest.approx(2.5 * math.cos(tilt))
    assert len(said) == 1 and "has a gantry tilt of 18.5 degrees: the slices are sheared 0.79 mm each, 3 mm across" \
        in said[0]


def test_a_regular_straight_series_says_nothing(tmp_path):
    volume, said = _read(_series(tmp_path / "ct", [(0.0, 0.0, 1.25 * k) for k in range(4)]))
    assert said == [] and volume.spacing[0] == pytest.approx(1.25)
