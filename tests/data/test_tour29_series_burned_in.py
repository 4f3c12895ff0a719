"""A DICOM series took BurnedInAnnotation from its first slice only: a series whose later slice says
YES (a name burned into one frame) was drawn. Every slice's flag is now read; any YES withholds."""

from __future__ import annotations

import pytest

from medlens.app.pixel_privacy import pixel_privacy
from medlens.data.formats.dicom import load_dicom
from tests.data.burned_in_dicom import write_ultrasound

pydicom = pytest.importorskip("pydicom")


def _series(folder, flags):
    folder.mkdir()
    series = pydicom.uid.generate_uid()
    for k, flag in enumerate(flags):
        path = folder / f"s{k}.dcm"
        write_ultrasound(path, flag, seed=k)
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID, ds.InstanceNumber = series, k + 1
        ds.save_as(path)
    return load_dicom(folder)


def test_a_later_slice_that_says_yes_withholds_the_series(tmp_path):
    volume = _series(tmp_path / "yes", ["NO", "NO", "YES"])
    assert volume.metadata["NumberOfSlices"] == "3" and volume.metadata["BurnedInAnnotation"] == "YES"
    assert pixel_privacy(volume.metadata).withhold
    assert not pixel_privacy(_series(tmp_path / "no", ["NO", "NO"]).metadata).withhold
