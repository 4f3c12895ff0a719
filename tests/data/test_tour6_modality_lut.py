"""A DICOM image whose stored values map through a Modality LUT Sequence reads in its modality's
values, as pydicom's apply_modality_lut gives them.

Seen on pydicom-data's mlut_18.dcm (stored -2048..2047 through a 4096-entry table to 0..65535):
medlens applied only Rescale Slope/Intercept (absent), so the stored values were read as if they
were the output.
"""

from __future__ import annotations

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from medlens.data.formats.read import read  # noqa: E402


def _with_lut(path, stored: np.ndarray, first: int, table: np.ndarray, photometric: str = "MONOCHROME2") -> None:
    from pydicom.data import get_testdata_file
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for keyword in ("RescaleSlope", "RescaleIntercept", "RescaleType"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.Rows, ds.Columns = stored.shape
    ds.PixelRepresentation, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 16, 12, 11
    ds.PhotometricInterpretation = photometric
    ds.PixelData = stored.astype(np.int16).tobytes()
    item = Dataset()
    item.LUTDescriptor = [len(table), first, 16]
    item.ModalityLUTType = "US"
    item.add_new(0x00283006, "US", [int(v) for v in table])  # LUTData
    ds.ModalityLUTSequence = Sequence([item])
    ds.save_as(path)


def test_values_go_through_the_table_clamped_at_its_ends(tmp_path):
    stored = np.array([[-3, -2, -1], [0, 1, 5]])
    table = np.array([100, 200, 300, 400, 500])  # stored -2 .. 2
    _with_lut(tmp_path / "lut.dcm", stored, -2, table)
    volume = read(tmp_path / "lut.dcm")
    assert volume.array.numpy().tolist() == [[100, 100, 200], [300, 400, 500]]
    assert volume.metadata["MaxValue"] == str(2**16 - 1)


def test_monochrome1_is_reflected_within_the_tables_range(tmp_path):
    _with_lut(tmp_path / "lut1.dcm", np.array([[0, 1, 2]]), 0, np.array([10, 20, 40]), photometric="MONOCHROME1")
    assert read(tmp_path / "lut1.dcm").array.numpy().tolist() == [[40, 30, 10]]  # 10 + 40 - value
