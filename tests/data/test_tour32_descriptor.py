"""A DICOMDIR's file-set descriptor (often README) is no case: left out and counted (tour32)."""

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from medlens.data.formats.folders import walk_cases


def _write(path, **header):
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = header.pop("sop", "1.2.840.10008.5.1.4.1.1.7")
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    for k, v in header.items():
        setattr(ds, k, v)
    ds.save_as(path, enforce_file_format=True)


def _image(path):
    _write(path, Modality="OT", SeriesInstanceUID=generate_uid(), Rows=4, Columns=4, BitsAllocated=8,
           BitsStored=8, HighBit=7, PixelRepresentation=0, SamplesPerPixel=1, PhotometricInterpretation="MONOCHROME2",
           PixelData=np.arange(16, dtype=np.uint8).tobytes())


def test_the_descriptor_a_dicomdir_names_is_left_out_and_counted(tmp_path):
    (tmp_path / "IMG").mkdir()
    _image(tmp_path / "IMG" / "I1")
    (tmp_path / "README").write_text("a file-set described\n")
    _write(tmp_path / "DICOMDIR", sop="1.2.840.10008.1.3.10", FileSetID="X", FileSetDescriptorFileID="README")
    cases, left_out = walk_cases(tmp_path)
    assert [c.name for c in cases] == ["IMG/I1"]
    assert "file-set descriptor of a DICOMDIR: 1" in left_out


def test_a_readme_no_dicomdir_names_stays_a_case(tmp_path):
    _image(tmp_path / "I1")
    (tmp_path / "README").write_text("not named by any index\n")
    _write(tmp_path / "DICOMDIR", sop="1.2.840.10008.1.3.10", FileSetID="X")
    cases, left_out = walk_cases(tmp_path)
    assert [c.name for c in cases] == ["I1", "README"]
