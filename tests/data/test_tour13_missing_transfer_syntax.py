"""A DICOM file whose file meta lacks the Transfer Syntax UID (0002,0010) but whose data set
pydicom read uncompressed is read in the encoding pydicom found (it was refused as 'cannot
decode pixel data (transfer syntax None)')."""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import generate_uid

from medlens.data import read


def test_pixels_are_read_in_the_encoding_found(tmp_path):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = "1.2.840.10008.5.1.4.1.1.4", generate_uid()
    ds = Dataset()
    ds.file_meta, ds.preamble = meta, b"\0" * 128
    ds.SOPClassUID, ds.Modality = meta.MediaStorageSOPClassUID, "MR"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = 8, 8, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = np.arange(64, dtype=np.uint16).tobytes()
    ds.save_as(tmp_path / "no_syntax.dcm", implicit_vr=True, little_endian=True)  # no (0002,0010) written
    volume = read(tmp_path / "no_syntax.dcm")
    assert np.array_equal(volume.array.numpy(), np.arange(64, dtype=np.float32).reshape(8, 8))
