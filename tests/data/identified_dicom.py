"""A real DICOM file (pydicom's CT_small.dcm) with every identifying attribute of the basic profile set.

String attributes get a unique token (``MLID000``, ``MLID001``, ...) so a test can search an output
for any of them; PatientName gets a hostile value that would run script if inserted unescaped.
"""

from __future__ import annotations

from pathlib import Path

HOSTILE_NAME = "<img src=x onerror=alert(1)>^Doe"

_TEXT_VRS = {"LO", "SH", "LT", "ST", "UT", "PN", "UC"}


def write_identified_dicom(path: str | Path, *, hostile: bool = True) -> dict[str, str]:
    """Write the file; return ``{keyword: value}`` of every identifying value set (unique tokens)."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.datadict import dictionary_VR, tag_for_keyword
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from medlens.data.formats.deid import BASIC_PROFILE

    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    values: dict[str, str] = {}
    for i, keyword in enumerate(sorted(BASIC_PROFILE)):
        tag = tag_for_keyword(keyword)
        vr = dictionary_VR(tag)
        token = f"MLID{i:03d}"
        if tag >> 16 in (0x0000, 0x0002, 0xFFFA) or vr in ("OB", "OW", "UN", "US", "SS", "UL", "SL"):
            continue  # command, file-meta and signature groups cannot be written in a data set; binary VRs hold no text
        if vr == "SQ":
            item = Dataset()
            item.PatientName = f"{token}^Nested"
            item.ReferencedSOPInstanceUID = f"1.2.826.0.1.3680043.9.{1000 + i}"
            ds.add_new(tag, vr, Sequence([item]))
            values[f"{keyword}[0].PatientName"] = f"{token}^Nested"
            continue
        if vr == "UI":
            value = f"1.2.826.0.1.3680043.9.{i}.7"
        elif vr == "DA":
            value = f"19{i % 90 + 10:02d}0{i % 9 + 1}1{i % 9}"
        elif vr == "TM":
            value = f"1{i % 10}{i % 6}{i % 10}0{i % 10}"
        elif vr == "DT":
            value = f"19{i % 90 + 10:02d}010112000{i % 10}"
        elif vr == "AS":
            value = f"0{i % 90 + 10:02d}Y"
        elif vr in ("DS", "IS"):
            value = str(100 + i)
        elif vr == "CS":
            value = f"CS{i:03d}"
        elif vr in _TEXT_VRS:
            value = token
        else:
            value = token
        if keyword == "PatientName" and hostile:
            value = HOSTILE_NAME
        ds.add_new(tag, vr, value)
        values[keyword] = value
    ds.add_new(0x00291010, "LO", "MLIDPRIVATE")  # a private element
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    values["MediaStorageSOPInstanceUID"] = str(ds.SOPInstanceUID)
    path = Path(path)
    ds.save_as(path, enforce_file_format=True)
    return values


def write_identified_series(folder: str | Path, *, slices: int = 16, size: int = 32, hostile: bool = True,
                            uid_names: bool = True) -> dict[str, str]:
    """A CT series (one file per slice, named by SOP instance UID as PACS exports do) of a
    sphere phantom, every identifying attribute set as in :func:`write_identified_dicom`."""
    import numpy as np
    import pydicom

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    template = folder / ".template.dcm"
    values = write_identified_dicom(template, hostile=hostile)
    z, y, x = np.mgrid[:slices, :size, :size]
    r = np.sqrt(((z - slices / 2) / slices) ** 2 + ((y - size / 2) / size) ** 2 + ((x - size / 2) / size) ** 2)
    volume = (np.where(r < 0.3, 400, -800) + 40 * np.sin(x / 3.0) + 20 * np.cos(y / 4.0) + 30 * np.cos(z / 2.0)).astype(np.int16)
    base = pydicom.dcmread(template)
    template.unlink()
    for k in range(slices):
        ds = base.copy()
        ds.Rows, ds.Columns = size, size
        ds.PixelRepresentation, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 16, 16, 15
        ds.RescaleSlope, ds.RescaleIntercept = 1, 0
        ds.PixelData = volume[k].tobytes()
        ds.ImagePositionPatient = [0.0, 0.0, float(2 * k)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [1.0, 1.0]
        ds.InstanceNumber = k + 1
        ds.SOPInstanceUID = f"1.2.826.0.1.3680043.9.7.{k + 1}"
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        name = f"{ds.SOPInstanceUID}.dcm" if uid_names else f"slice{k:03d}.dcm"
        ds.save_as(folder / name, enforce_file_format=True)
    return values
