"""An ultrasound DICOM whose top rows are a bright banner, where a scanner burns in the patient's
name; its header's BurnedInAnnotation says so (``"YES"``), denies it (``"NO"``) or is absent."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_ultrasound(path: Path, burned_in: str | None, seed: int = 0) -> np.ndarray:
    """A 32 x 32 ultrasound, its top rows a bright banner (where a scanner writes the name)."""
    import pydicom
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, UltrasoundImageStorage, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID = UltrasoundImageStorage, ExplicitVRLittleEndian
    meta.MediaStorageSOPInstanceUID = generate_uid()
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = UltrasoundImageStorage, meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "US", "Smithfield^Johnathan", "MRN7731"
    if burned_in is not None:
        ds.BurnedInAnnotation = burned_in
    pixels = (np.random.default_rng(seed).random((32, 32)) * 120).astype(np.uint8)
    pixels[:6] = 255  # the banner (where the name would be written)
    ds.Rows = ds.Columns = 32
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    assert pydicom.dcmread(path).get("BurnedInAnnotation") == burned_in
    return pixels
