"""DICOM objects that are not images, DICOMDIRs under other names, and other formats near NIfTI and DICOM.

Seen on pydicom's test files: rtplan.dcm, test-SR.dcm and waveform_ecg.dcm said only "has no
pixel data (SOP class 1.2.840.10008.5.1.4.1.1.481.5)"; stripped CT files "has no pixel data (it
may be truncated)"; dicomdirtests/DICOMDIR-implicit (a DICOMDIR under another name) was a case
failing with "no pixel data"; a localizer series' message printed numpy's "np.float64(0.9591...)".
"""

from __future__ import annotations

import pytest

pydicom = pytest.importorskip("pydicom")

from pydicom.data import get_testdata_file  # noqa: E402

from medlens.data.formats.folders import scan_cases  # noqa: E402
from medlens.data.formats.read import read  # noqa: E402
from medlens.errors import FileFormatError  # noqa: E402


@pytest.mark.parametrize("name, what", [
    ("rtplan.dcm", "it is a RT Plan Storage object, not an image (SOP class 1.2.840.10008.5.1.4.1.1.481.5)"),
    ("test-SR.dcm", "it is a Comprehensive SR Storage object, not an image"),
])
def test_an_object_without_an_image_is_named_by_its_class(name, what):
    with pytest.raises(FileFormatError) as err:
        read(get_testdata_file(name))
    assert f"{name} has no pixel data: {what}" in str(err.value)


def test_an_image_object_stripped_of_its_pixels_says_so(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    del ds.PixelData
    ds.save_as(tmp_path / "stripped.dcm")
    with pytest.raises(FileFormatError, match=r"stripped.dcm has no pixel data \(a CT Image Storage object without "
                                              r"its pixels: truncated, or stripped of them\)"):
        read(tmp_path / "stripped.dcm")


def test_a_dicomdir_under_another_name_is_no_case(tmp_path):
    from pydicom.fileset import FileSet

    image = tmp_path / "src.dcm"
    pydicom.dcmread(get_testdata_file("CT_small.dcm")).save_as(image)
    fs = FileSet()
    fs.add(image)
    fs.write(tmp_path / "media")
    (tmp_path / "media" / "DICOMDIR").rename(tmp_path / "media" / "DICOMDIR-copy")
    image.unlink()
    names = [c.name for c in scan_cases(tmp_path / "media")]
    assert len(names) == 1 and "DICOMDIR" not in names[0]


def test_a_series_of_several_planes_is_refused_with_plain_numbers(tmp_path):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    folder = tmp_path / "localizer"
    folder.mkdir()
    for k, orientation in enumerate(([1, 0, 0, 0, 1, 0], [0, 1, 0, 0, 0, -1])):
        ds.ImageOrientationPatient = orientation
        ds.ImagePositionPatient = [0, 0, float(k)]
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.9.7.{k + 1}"
        ds.save_as(folder / f"{k}.dcm")
    with pytest.raises(FileFormatError) as err:
        read(folder)
    message = str(err.value)
    assert "np.float64" not in message and "[0, 1, 0, 0, 0, -1]" in message and "[1, 0, 0, 0, 1, 0]" in message
    assert "a localizer series holds several planes" in message


def test_an_analyze_image_is_named_as_such(tmp_path):
    """Seen on nibabel's analyze.hdr: "is a Spm2AnalyzeImage, not a NIfTI image"."""
    import nibabel as nib
    import numpy as np

    nib.save(nib.AnalyzeImage(np.zeros((3, 4, 5), dtype=np.int16), np.eye(4)), tmp_path / "scan.hdr")
    with pytest.raises(FileFormatError, match=r"scan.hdr is an Analyze 7.5 image \(.hdr/.img, no reliable orientation\), "
                                              r"not a NIfTI image: convert it to NIfTI"):
        read(tmp_path / "scan.hdr")
