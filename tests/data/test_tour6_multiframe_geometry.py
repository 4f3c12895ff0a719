"""An enhanced multi-frame object's frames are as far apart as their own positions say.

Seen on pydicom-data's eCT_Supplemental.dcm (two CT frames at z = -159 and -149 mm, positions in
PerFrameFunctionalGroupsSequence, thickness 10 mm in the shared Pixel Measures): the reader took
the top-level SpacingBetweenSlices / SliceThickness it does not have, so the frames were 1 mm
apart in the spacing and in the affine of attribution.nii.gz.
"""

from __future__ import annotations

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from medlens.data.formats.read import read  # noqa: E402


def _enhanced(path, zs, thickness: float | None = None) -> None:
    from pydicom.data import get_testdata_file
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "SliceThickness", "SpacingBetweenSlices",
                    "PixelSpacing"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.Rows = ds.Columns = 4
    ds.NumberOfFrames = len(zs)
    ds.PixelData = np.zeros((len(zs), 4, 4), dtype=np.int16).tobytes()
    shared = Dataset()
    orientation, measures = Dataset(), Dataset()
    orientation.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
    measures.PixelSpacing = [0.5, 0.5]
    if thickness is not None:
        measures.SliceThickness = thickness
    shared.PlaneOrientationSequence, shared.PixelMeasuresSequence = Sequence([orientation]), Sequence([measures])
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    frames = []
    for z in zs:
        frame, position = Dataset(), Dataset()
        position.ImagePositionPatient = [0.0, 0.0, float(z)]
        frame.PlanePositionSequence = Sequence([position])
        frames.append(frame)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    ds.save_as(path)


def test_frame_spacing_and_affine_come_from_the_frames_positions(tmp_path):
    _enhanced(tmp_path / "e.dcm", [-159.0, -149.0, -139.0], thickness=1.0)
    volume = read(tmp_path / "e.dcm")
    assert volume.spacing == (10.0, 0.5, 0.5)
    affine = np.array(volume.affine)
    assert np.allclose(np.abs(affine[:3, 0]), [0.0, 0.0, 10.0]) and affine[2, 3] == -159.0


def test_without_positions_the_shared_thickness_is_the_spacing(tmp_path):
    _enhanced(tmp_path / "e.dcm", [0.0, 0.0], thickness=3.0)  # one position twice: not a frame distance
    assert read(tmp_path / "e.dcm").spacing == (3.0, 0.5, 0.5)
