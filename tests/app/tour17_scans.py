"""Tiny folders of scans for the tour17 tests: the same images as PNG files, as DICOM files (with a
PatientName) and as an npz data set, and a tiny model that takes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from medlens.models import CNN, save_model

PATIENT = "Doe^Jane"


def images(n: int = 10, seed: int = 0) -> np.ndarray:
    """``n`` random 28 x 28 uint8 images."""
    return np.random.default_rng(seed).integers(0, 256, (n, 28, 28), dtype=np.uint8)


def write_pngs(folder: Path, pixels: np.ndarray, labels: np.ndarray | None = None) -> Path:
    """Each image as ``folder/patient_<i>.png`` (a name that identifies); ``labels.csv`` beside the
    folder when ``labels`` are given. Returns the folder."""
    folder.mkdir(parents=True)
    for i, image in enumerate(pixels):
        Image.fromarray(image).save(folder / f"patient_{i:02d}.png")
    if labels is not None:
        rows = [f"patient_{i:02d}.png,{int(v)}" for i, v in enumerate(labels)]
        (folder.parent / "labels.csv").write_text("case,label\n" + "\n".join(rows) + "\n")
    return folder


def write_dicoms(folder: Path, pixels: np.ndarray, patient_ids: list[str] | None = None, first_uid: int = 100) -> Path:
    """Each image as a secondary-capture DICOM file with a PatientName and PatientID (``PID_<i>``,
    or ``patient_ids[i]``), one series each, named by its SOP Instance UID (from ``first_uid`` on)
    as PACS exports do."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

    folder.mkdir(parents=True)
    for i, image in enumerate(pixels):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
        meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.9.7177.{first_uid + i}"  # named by UID, in order
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = pydicom.Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = SecondaryCaptureImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.PatientName, ds.Modality = PATIENT, "OT"
        ds.PatientID = f"PID_{i:03d}" if patient_ids is None else patient_ids[i]
        ds.Rows, ds.Columns = image.shape
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
        ds.PixelData = np.ascontiguousarray(image).tobytes()
        ds.save_as(folder / f"{ds.SOPInstanceUID}.dcm", enforce_file_format=True)
    return folder


def write_npz(path: Path, splits: dict[str, tuple[np.ndarray, np.ndarray]]) -> Path:
    """``{split: (uint8 images, labels)}`` as an npz data set (uint8 images are read as /255)."""
    arrays = {}
    for split, (pixels, labels) in splits.items():
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = pixels, np.asarray(labels)
    np.savez(path, **arrays)
    return path


def write_model(path: Path, **meta) -> Path:
    """A tiny 2-class CNN on 28 x 28 images whose recipe reads 8-bit files as their values / 255."""
    torch.manual_seed(0)
    recipe = {"size": [28, 28], "channels": 1, "normalize": "unit"}
    return save_model(CNN(2, 1, 2, widths=(4, 8), input_shape=(1, 28, 28)).eval(), path,
                      {"input_shape": [1, 28, 28], "recipe": recipe, **meta})
