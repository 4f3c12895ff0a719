"""Former home of every reader; kept so that ``medlens.data.loaders.X`` keeps working.

The readers now live one format per module: :mod:`medlens.data.datasets` (bundled data, npz,
UCR text), :mod:`medlens.data.dicom`, :mod:`medlens.data.nifti`, :mod:`medlens.data.images`
(PNG, JPEG, TIFF), :mod:`medlens.data.signals` (WFDB, EDF/BDF), with one entry point that sniffs
the format: :func:`medlens.data.read.read`.
"""

from medlens.data.common import Volume, to_model_input
from medlens.data.datasets import (
    BUNDLED,
    ECG5000_CLASS_NAMES,
    BundledDataset,
    LabelledSet,
    bundled_file,
    bundled_path,
    load_dataset,
    load_ecg5000,
    load_npz,
)
from medlens.data.dicom import DICOM_IDENTIFIER_TAGS, DICOM_METADATA_TAGS, load_dicom
from medlens.data.nifti import load_nifti

__all__ = [
    "BUNDLED",
    "BundledDataset",
    "DICOM_IDENTIFIER_TAGS",
    "DICOM_METADATA_TAGS",
    "ECG5000_CLASS_NAMES",
    "LabelledSet",
    "Volume",
    "bundled_file",
    "bundled_path",
    "load_dataset",
    "load_dicom",
    "load_ecg5000",
    "load_nifti",
    "load_npz",
    "to_model_input",
]
