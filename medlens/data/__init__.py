"""Readers of the field's formats, preprocessing recipes, bundled data and generators.

One entry point reads any file: :func:`read` (DICOM file/series/multi-frame, NIfTI, PNG, JPEG,
TIFF, WFDB, EDF/EDF+/BDF, ``.npy``) returns a :class:`Volume` or a :class:`Signal`, with the
array, its geometry, non-identifying metadata and identifiers kept apart. The preprocessing
recipe that travels with a model: :mod:`medlens.data.recipe`. Labelled data sets (bundled
PneumoniaMNIST, BreastMNIST, ECG5000; npz archives): :func:`load_dataset`.
Provenance and licences of the bundled data: ``medlens/data/datasets/bundled/LICENSES.md``.
"""

from medlens.data.formats.common import Volume, to_model_input
from medlens.data.datasets import (
    BUNDLED,
    BundledDataset,
    LabelledSet,
    bundled_file,
    bundled_path,
    load_dataset,
    load_ecg5000,
    load_npz,
)
from medlens.data.formats.dicom import load_dicom
from medlens.data.formats.images import load_picture, load_tiff
from medlens.data.formats.nifti import load_nifti, write_nifti
from medlens.data.formats.read import FORMATS, read, sniff
from medlens.data.formats.signals import Annotation, Signal, load_edf, load_signal, load_wfdb

__all__ = [
    "BUNDLED",
    "FORMATS",
    "Annotation",
    "BundledDataset",
    "LabelledSet",
    "Signal",
    "Volume",
    "bundled_file",
    "bundled_path",
    "load_dataset",
    "load_dicom",
    "load_ecg5000",
    "load_edf",
    "load_nifti",
    "load_npz",
    "load_picture",
    "load_signal",
    "load_tiff",
    "load_wfdb",
    "read",
    "sniff",
    "to_model_input",
    "write_nifti",
]
