"""An enhanced (multi-frame) CT whose frames have their own Rescale Slope and Intercept.

Seen: a Legacy Converted Enhanced CT (highdicom, from three CT slices rescaled differently) keeps
each frame's Pixel Value Transformation in its Per-frame Functional Groups; the reader applied
one rescale (none: slope 1, intercept 0) to every frame, so the frames were not in HU.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
hd = pytest.importorskip("highdicom")

from pydicom.data import get_testdata_file  # noqa: E402

from medlens.data.formats.read import read  # noqa: E402

RESCALES = ((1.0, -1024.0), (2.0, -1000.0), (0.5, 0.0))  # slope, intercept of the slices at z = 0, 2, 4 mm


def _legacy_enhanced_ct(path):
    """Three CT slices (pydicom's CT_small.dcm, a ramp of stored values each) converted by highdicom."""
    base = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ramp = np.arange(128 * 128, dtype=np.int16).reshape(128, 128) % 700
    slices = []
    for k, (slope, intercept) in enumerate(RESCALES):
        ds = copy.deepcopy(base)
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.9.7.{k + 1}"
        ds.ImagePositionPatient, ds.InstanceNumber = [0.0, 0.0, 2.0 * k], k + 1
        ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
        ds.PixelData = (ramp + 100 * k).astype(np.int16).tobytes()
        slices.append(ds)
    enhanced = hd.legacy.LegacyConvertedEnhancedCTImage(
        legacy_datasets=slices, series_instance_uid="1.2.826.0.1.3680043.9.7.100", series_number=3,
        sop_instance_uid="1.2.826.0.1.3680043.9.7.101", instance_number=1)
    enhanced.save_as(path)
    return ramp


def test_each_frame_is_rescaled_by_its_own_slope_and_intercept(tmp_path):
    ramp = _legacy_enhanced_ct(tmp_path / "enhanced.dcm")
    ds = pydicom.dcmread(tmp_path / "enhanced.dcm")
    assert "RescaleSlope" not in ds and "PixelValueTransformationSequence" in ds.PerFrameFunctionalGroupsSequence[0]
    volume = read(tmp_path / "enhanced.dcm")
    assert volume.array.shape == (3, 128, 128)
    frames = {float(g.PlanePositionSequence[0].ImagePositionPatient[2]): k
              for k, g in enumerate(ds.PerFrameFunctionalGroupsSequence)}
    for k, (slope, intercept) in enumerate(RESCALES):  # each slice's HU, wherever the converter put its frame
        want = (ramp + 100 * k) * slope + intercept
        assert np.array_equal(volume.array[frames[2.0 * k]].numpy(), want.astype(np.float32))
    assert "MaxValue" not in volume.metadata  # HU, not stored grey levels of a fixed range
