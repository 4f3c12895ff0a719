"""A colour multi-frame DICOM (an ultrasound cine loop) is read as frames of RGB, and a 2-D colour
model sees the frame ``--slice`` names.

Seen on pydicom's examples_ybr_color.dcm (30 frames of 240 x 320 YBR_FULL_422 ultrasound) and
pydicom-data's SC_rgb_2frame.dcm: "is a colour multi-frame object (shape (30, 240, 320, 3));
medlens reads colour DICOM one frame at a time", with no way to pick a frame.
"""

from __future__ import annotations

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from medlens.data.formats.read import read  # noqa: E402
from medlens.data.recipe import Recipe, prepare  # noqa: E402


def _cine(path, frames: np.ndarray) -> None:
    """Write ``frames`` ``(F, H, W, 3)`` uint8 as an uncompressed RGB multi-frame ultrasound file."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"  # Ultrasound Multi-frame Image Storage
    meta.MediaStorageSOPInstanceUID = generate_uid(entropy_srcs=["tour6 cine"])
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.StudyInstanceUID = generate_uid(entropy_srcs=["tour6 study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=["tour6 series"])
    ds.PatientName, ds.PatientID, ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "Cine^Test", "T6", "1", 1, 1
    ds.NumberOfFrames, ds.Rows, ds.Columns = frames.shape[:3]
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.ascontiguousarray(frames, dtype=np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)


def test_a_colour_cine_reads_as_rgb_frames_and_a_slice_is_one_frame(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (4, 6, 8, 3), dtype=np.uint8)
    _cine(tmp_path / "cine.dcm", frames)
    volume = read(tmp_path / "cine.dcm")
    assert volume.channels == 3 and tuple(volume.array.shape) == (3, 4, 6, 8)
    assert np.array_equal(volume.array.numpy(), np.moveaxis(frames, -1, 0).astype(np.float32))
    assert len(volume.spacing) == 3
    prepared = prepare(volume, Recipe(normalize="none", channels=3, size=(6, 8), slice=2))
    assert np.array_equal(prepared.x[0].numpy(), np.moveaxis(frames[2], -1, 0).astype(np.float32))


def test_frames_of_grey_stored_as_colour_read_as_a_grey_volume(tmp_path):
    grey = np.random.default_rng(1).integers(0, 256, (3, 5, 7), dtype=np.uint8)
    _cine(tmp_path / "grey.dcm", np.repeat(grey[..., None], 3, axis=-1))
    volume = read(tmp_path / "grey.dcm")
    assert volume.channels == 1 and np.array_equal(volume.array.numpy(), grey.astype(np.float32))


def test_explain_a_frame_of_a_cine_with_dicom_objects(tmp_path):
    """The Secondary Capture of a volume's map was cut from ``array[D // 2]``, the colour axis of a
    cine (IndexError: "index 15 is out of bounds for dimension 0 with size 3" on
    examples_ybr_color.dcm); it now shows the slice the map is on."""
    import torch

    from medlens.cli import main
    from medlens.models.cnn import CNN
    from medlens.models.io import save_model

    frames = np.random.default_rng(2).integers(0, 256, (5, 12, 16, 3), dtype=np.uint8)
    _cine(tmp_path / "cine.dcm", frames)
    torch.manual_seed(0)
    model = CNN(2, 3, 2, widths=(4, 8), input_shape=(3, 12, 16))
    save_model(model, tmp_path / "rgb.pt", {"input_shape": [3, 12, 16], "class_names": ["a", "b"],
                                            "recipe": Recipe(normalize="minmax", channels=3, size=(12, 16))})
    out = tmp_path / "out"
    assert main(["explain", "--model", str(tmp_path / "rgb.pt"), "--input", str(tmp_path / "cine.dcm"), "--slice", "3",
                 "--method", "gradient", "--dicom-out", "--out", str(out), "--quiet"]) == 0
    attribution = np.load(out / "attribution.npy")
    assert attribution.shape == (5, 12, 16)
    assert np.abs(attribution[3]).sum() > 0 and np.abs(np.delete(attribution, 3, axis=0)).sum() == 0
    assert pydicom.dcmread(out / "overlay_sc.dcm").pixel_array.shape[:2] == (12, 16)


def test_a_cine_given_to_a_grey_model_is_described_with_its_colour(tmp_path):
    from medlens.data.kinds import describe_record

    _cine(tmp_path / "cine.dcm", np.zeros((2, 4, 5, 3), dtype=np.uint8) + np.arange(3, dtype=np.uint8))
    assert describe_record(read(tmp_path / "cine.dcm")) == "a 3-D volume (DICOM US, RGB, 2 x 4 x 5)"
