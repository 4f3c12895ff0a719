"""A DICOM segmentation (SEG) given as the scan: refused as a segmentation, not read as an image.

Seen: a SEG written by highdicom on a CT series was read as a 128 x 128 'SEG' image and explained
as if it were the scan (its frames are the segments' binary masks).
"""

from __future__ import annotations

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
hd = pytest.importorskip("highdicom")

from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.sr.codedict import codes  # noqa: E402

from medlens.cli import main  # noqa: E402
from medlens.data.formats.read import read  # noqa: E402
from medlens.errors import FileFormatError  # noqa: E402

REFUSAL = ("is a DICOM segmentation (SEG), not a scan: give the scan it was drawn on as the input; a mask goes to "
           "--target-mask (explain) or the mask column of --labels (audit, evaluate) as NIfTI, PNG or .npy on the "
           "scan's grid, not as DICOM SEG")


def _ct_series_and_seg(tmp_path):
    """Three CT slices (pydicom's CT_small.dcm at z = 0, 2, 4 mm) and highdicom's SEG of a square on the middle one."""
    series = tmp_path / "ct"
    series.mkdir()
    base = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    base.SeriesInstanceUID = "1.2.826.0.1.3680043.9.7.100"
    for k in range(3):
        ds = base.copy()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.9.7.{k + 1}"
        ds.ImagePositionPatient, ds.InstanceNumber = [0.0, 0.0, 2.0 * k], k + 1
        ds.save_as(series / f"{k}.dcm", enforce_file_format=True)
    slices = [pydicom.dcmread(series / f"{k}.dcm") for k in range(3)]
    mask = np.zeros((3, base.Rows, base.Columns), dtype=bool)
    mask[1, 20:40, 20:40] = True
    segment = hd.seg.SegmentDescription(
        segment_number=1, segment_label="lesion", segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Neoplasm, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
    seg = hd.seg.Segmentation(
        source_images=slices, pixel_array=mask, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment], series_instance_uid="1.2.826.0.1.3680043.9.7.200", series_number=2,
        sop_instance_uid="1.2.826.0.1.3680043.9.7.201", instance_number=1, manufacturer="medlens tests",
        manufacturer_model_name="test", software_versions="0", device_serial_number="0")
    seg.save_as(tmp_path / "seg.dcm")
    return series, tmp_path / "seg.dcm"


def test_a_seg_file_is_refused_as_a_segmentation_and_its_scan_is_read(tmp_path):
    series, seg = _ct_series_and_seg(tmp_path)
    assert pydicom.dcmread(seg).Modality == "SEG"
    assert read(series).array.shape == (3, 128, 128)
    with pytest.raises(FileFormatError) as err:
        read(seg)
    assert str(err.value) == f"{seg} {REFUSAL}"
    alone = tmp_path / "seg_series"
    alone.mkdir()
    seg.rename(alone / "seg.dcm")
    with pytest.raises(FileFormatError, match=r"seg\.dcm is a DICOM segmentation \(SEG\), not a scan"):
        read(alone)


def test_explain_refuses_a_seg_given_as_the_input_in_one_line(tmp_path, capsys):
    import torch

    from medlens.data.recipe import Recipe
    from medlens.models.cnn import CNN
    from medlens.models.io import save_model

    _, seg = _ct_series_and_seg(tmp_path)
    torch.manual_seed(0)
    save_model(CNN(2, 1, 2, widths=(4, 8), input_shape=(1, 16, 16)), tmp_path / "ct.pt",
               {"input_shape": [1, 16, 16], "class_names": ["a", "b"],
                "recipe": Recipe(normalize="minmax", channels=1, size=(16, 16))})
    assert main(["explain", "--model", str(tmp_path / "ct.pt"), "--input", str(seg), "--method", "gradient",
                 "--out", str(tmp_path / "out"), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert err == f"medlens: error: {seg} {REFUSAL}\n"
    assert not (tmp_path / "out").exists()
