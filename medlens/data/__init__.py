"""Data loaders: bundled real data sets, npz (MedMNIST layout), UCR ECG text, DICOM and NIfTI.

All loaders return torch tensors; see :mod:`medlens.data.loaders` for shapes and errors.
Provenance and licences of the bundled data: ``medlens/data/bundled/LICENSES.md``.
"""

from medlens.data.loaders import (
    BUNDLED,
    BundledDataset,
    LabelledSet,
    Volume,
    bundled_path,
    load_dataset,
    load_dicom,
    load_ecg5000,
    load_nifti,
    load_npz,
    to_model_input,
)

__all__ = [
    "BUNDLED",
    "BundledDataset",
    "LabelledSet",
    "Volume",
    "bundled_path",
    "load_dataset",
    "load_dicom",
    "load_ecg5000",
    "load_nifti",
    "load_npz",
    "to_model_input",
]
