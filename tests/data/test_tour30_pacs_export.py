"""A PACS or CD export pointed at as it is: what are its cases?

Seen on an export written like a hospital's (DICOMDIR, extensionless files in PATIENT/STUDY/SERIES
folders) and on pydicom's dicomdirtests: every structured report, presentation state, key object
selection, RT structure set, SEG and encapsulated PDF was a case that failed ("has no pixel data"),
as were the scouts, an empty file and Thumbs.db; a CT series split across two folders was two
cases, and a second copy of one slice in its folder broke the series into one case per file.
Expected: one case per image series or radiograph; the rest left out and counted by kind in one
line that names no file and no patient.
"""

from __future__ import annotations

import pytest

pydicom = pytest.importorskip("pydicom")

from medlens.data.cases import open_cases  # noqa: E402
from medlens.data.formats.folders import scan_cases  # noqa: E402

_CT, _CR = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.5.1.4.1.1.1"


def _write(path, sop: str, modality: str, series: str, instance: str, *, z: float | None = None,
           description: str = "", image_type=("ORIGINAL", "PRIMARY", "AXIAL"), pixels: bool = True) -> None:
    """A small DICOM object written by pydicom: an 8x8 image unless ``pixels`` is false."""
    import numpy as np
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.MediaStorageSOPInstanceUID = sop, instance
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = sop, instance, modality
    ds.PatientName, ds.PatientID = "Doe^Jane", "MRN0042"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SeriesDescription = "1.2.3", series, description
    if pixels:
        ds.ImageType = list(image_type)
        if z is not None:
            ds.ImagePositionPatient, ds.ImageOrientationPatient = [0.0, 0.0, z], [1.0, 0.0, 0.0, 0.0, 1.0, 0.0]
            ds.PixelSpacing = [1.0, 1.0]
        ds.Rows = ds.Columns = 8
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = np.full((8, 8), 100 + int(z or 0), dtype=np.uint16).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def _export(root):
    """An export: a CT series split over SE1 and SE2 with two copies of one slice (one cut short),
    a CT scout, an MR localizer, a CR radiograph, six non-image objects, an empty file,
    Thumbs.db and a DICOMDIR."""
    study = root / "PT000000" / "ST000000"
    for k in range(4):
        _write(study / ("SE1" if k < 3 else "SE2") / f"IM{k}", _CT, "CT", "1.2.3.1", f"1.2.3.1.{k}", z=float(k))
    raw = (study / "SE1" / "IM1").read_bytes()
    (study / "SE1" / "IM9").write_bytes(raw[: len(raw) - 40])  # a copy of IM1, cut short
    (study / "COPY" / "IM1").parent.mkdir()
    (study / "COPY" / "IM1").write_bytes(raw)  # the same instance again, elsewhere
    _write(study / "SE3" / "IM0", _CT, "CT", "1.2.3.3", "1.2.3.3.0", z=0.0,
           image_type=("ORIGINAL", "PRIMARY", "LOCALIZER"))
    _write(study / "SE4" / "IM0", "1.2.840.10008.5.1.4.1.1.4", "MR", "1.2.3.4", "1.2.3.4.0", z=0.0,
           description="3-PLANE LOCALIZER", image_type=("ORIGINAL", "PRIMARY", "OTHER"))
    _write(root / "PT000000" / "ST000001" / "SE1" / "IM0", _CR, "CR", "1.2.3.5", "1.2.3.5.0",
           image_type=("ORIGINAL", "PRIMARY"))
    for k, (sop, modality) in enumerate([("1.2.840.10008.5.1.4.1.1.88.67", "SR"), ("1.2.840.10008.5.1.4.1.1.11.1", "PR"),
                                         ("1.2.840.10008.5.1.4.1.1.88.59", "KO"), ("1.2.840.10008.5.1.4.1.1.481.3", "RTSTRUCT"),
                                         ("1.2.840.10008.5.1.4.1.1.66.4", "SEG"), ("1.2.840.10008.5.1.4.1.1.104.1", "DOC")]):
        _write(study / f"SE{10 + k}" / "IM0", sop, modality, f"1.2.3.{10 + k}", f"1.2.3.{10 + k}.0", pixels=False)
    (study / "SE1" / "IM8").write_bytes(b"")
    (study / "Thumbs.db").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64))
    _write(root / "DICOMDIR", "1.2.840.10008.1.3.10", "", "", "1.2.3.99", pixels=False)


def test_an_export_has_one_case_per_image_series_and_radiograph(tmp_path):
    _export(tmp_path)
    cases = scan_cases(tmp_path)
    assert [c.name for c in cases] == ["PT000000/ST000000/SE1", "PT000000/ST000001/SE1/IM0"]
    ct = cases[0]
    assert sorted(p.name for p in ct.paths) == ["IM0", "IM1", "IM2", "IM3"]
    assert all(p.parent.name != "COPY" and p.name != "IM9" for p in ct.paths)  # the full copy in its series' folder
    assert tuple(ct.read().array.shape) == (4, 8, 8)  # one volume across both folders


def test_what_an_export_holds_besides_its_cases_is_counted_by_kind_in_one_line(tmp_path):
    _export(tmp_path)
    opened = open_cases(tmp_path, input_shape=(1, 8, 8))
    line = opened.skipped
    assert "\n" not in line and line.startswith("left out 11 file(s) that are no case")
    for kind in ["second copy of an instance (same SOPInstanceUID): 2", "scout/localizer: 2", "dose report (SR): 1",
                 "presentation state (PR): 1", "key object selection (KO): 1", "RT structure set: 1",
                 "segmentation (SEG): 1", "encapsulated document (PDF, CDA): 1", "empty file (0 bytes): 1"]:
        assert kind in line
    assert "Doe" not in line and "PT000000" not in line and "IM" not in line  # no patient, no file


def test_a_warning_on_reading_a_case_names_its_id_not_its_folder(tmp_path):
    # exports name folders by patient (pydicom's dicomdirtests: 77654033/CT2 is a patient id)
    for k, z in enumerate([0.0, 1.0, 2.0, 9.0]):  # a gap: load_dicom warns, naming the series folder
        _write(tmp_path / "DOE_JANE_MRN0042" / "CT" / f"IM{k}", _CT, "CT", "1.2.3.1", f"1.2.3.1.{k}", z=z)
    _write(tmp_path / "DOE_JANE_MRN0042" / "CR" / "IM0", _CR, "CR", "1.2.3.5", "1.2.3.5.0", image_type=("ORIGINAL",))
    opened = open_cases(tmp_path, input_shape=(1, 8, 8, 8))
    with pytest.warns(UserWarning) as caught:
        opened.case(1)
    said = " ".join(str(w.message) for w in caught)
    # the series' geometry warning (a gap read as missing slices) names case-0001, not the patient's folder
    assert "DICOM series in case-0001 has" in said and "slices missing" in said and "DOE" not in said
