"""Small volumes with one bright voxel at the patient's left-anterior-superior corner, stored under
different axis orders and directions (NIfTI written with nibabel, DICOM series with pydicom).

Drawn as a radiologist reads them, the marker lands in the same corner of every panel whatever
the storage: top right of the axial panel (anterior up, the patient's left on the image's
right), top right of the coronal (superior up, left on the right), top left of the sagittal
(superior up, anterior on the left)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

SHAPE = (5, 6, 7)  # three different lengths: a transposed panel cannot pass for the right one
MARKER = 1000.0

#: The corner (top or bottom, left or right) the marker must land in, per panel.
CORNER = {"axial": ("top", "right"), "coronal": ("top", "right"), "sagittal": ("top", "left")}


def _columns(*cols):
    a = np.eye(4)
    for k, c in enumerate(cols):
        a[:3, k] = c
    return a


#: name -> (affine's direction columns (RAS), the stored voxel at the patient's left-anterior-superior corner)
NIFTI_CASES = {
    # axis 0 towards R, 1 towards A, 2 towards S: the left end of axis 0 is index 0
    "RAS": (_columns((1, 0, 0), (0, 1, 0), (0, 0, 2)), (0, SHAPE[1] - 1, SHAPE[2] - 1)),
    "LPS": (_columns((-1, 0, 0), (0, -1, 0), (0, 0, 2)), (SHAPE[0] - 1, 0, SHAPE[2] - 1)),
    "LAS": (_columns((-1, 0, 0), (0, 1, 0), (0, 0, 2)), (SHAPE[0] - 1, SHAPE[1] - 1, SHAPE[2] - 1)),
    # permuted: axis 0 towards P, 1 towards I, 2 towards R
    "PIR": (_columns((0, -1, 0), (0, 0, -2), (1, 0, 0)), (0, 0, 0)),
    # slices first, as a DICOM series: axis 0 towards S, 1 towards P, 2 towards L
    "SPL": (_columns((0, 0, 2), (0, -1, 0), (-1, 0, 0)), (SHAPE[0] - 1, 0, SHAPE[2] - 1)),
}


def write_nifti(path: Path, case: str) -> tuple[Path, tuple[int, int, int]]:
    """The NIfTI image of ``case`` and the stored index of its marker."""
    affine, marker = NIFTI_CASES[case]
    data = np.zeros(SHAPE, dtype=np.int16)
    data[marker] = int(MARKER)
    nib.save(nib.Nifti1Image(data, affine), str(path))
    return path, marker


def write_dicom_series(folder: Path, plane: str) -> Path:
    """An axial or sagittal MR series (``ImageOrientationPatient`` in LPS), the marker in the slice
    farthest towards the patient's superior (axial) or left (sagittal) side, files named in
    reverse order of position so that the reader has to sort them."""
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, MRImageStorage, generate_uid

    rows, cols, slices = 6, 7, 5
    if plane == "axial":  # columns towards L (+x), rows towards P (+y), slices along S (+z)
        iop, step, corner = [1, 0, 0, 0, 1, 0], np.array([0.0, 0.0, 2.0]), (0, cols - 1)
    elif plane == "sagittal":  # columns towards P (+y), rows towards I (-z), slices along L (+x)
        iop, step, corner = [0, 1, 0, 0, 0, -1], np.array([2.0, 0.0, 0.0]), (0, 0)
    else:
        raise ValueError(plane)
    folder.mkdir()
    series, study, frame = generate_uid(), generate_uid(), generate_uid()
    for k in range(slices):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = MRImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = FileDataset(str(folder / f"s{slices - k}.dcm"), {}, file_meta=meta, preamble=b"\0" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = MRImageStorage, meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.Modality, ds.InstanceNumber = "MR", k + 1
        ds.ImagePositionPatient = [float(v) for v in step * k]
        ds.ImageOrientationPatient = [float(v) for v in iop]
        ds.PixelSpacing, ds.SliceThickness = [1.0, 1.0], 2.0
        ds.Rows, ds.Columns = rows, cols
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        pixels = np.zeros((rows, cols), dtype=np.uint16)
        if k == slices - 1:
            pixels[corner] = int(MARKER)
        ds.PixelData = pixels.tobytes()
        ds.save_as(folder / f"s{slices - k}.dcm", enforce_file_format=True)
    return folder


def corner_of(panel: np.ndarray) -> tuple[str, str]:
    """Where the panel's brightest pixel lies: ("top" or "bottom", "left" or "right"); the panel
    must hold it in a corner."""
    r, c = np.unravel_index(int(np.argmax(panel)), panel.shape)
    assert r in (0, panel.shape[0] - 1) and c in (0, panel.shape[1] - 1), (r, c, panel.shape)
    return ("top" if r == 0 else "bottom"), ("left" if c == 0 else "right")
