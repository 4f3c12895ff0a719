"""De-identification following DICOM PS3.15's basic profile, on a real CT file with every tag set."""

from __future__ import annotations

import pydicom
import pytest
from pydicom.datadict import dictionary_VR, tag_for_keyword

from medlens.data.formats.deid import BASIC_PROFILE, deidentify, identifying_elements, is_uid_like, read_identity
from medlens.errors import FileFormatError
from tests.data.identified_dicom import HOSTILE_NAME, write_identified_dicom


def test_profile_names_real_attributes_with_valid_actions():
    assert len(BASIC_PROFILE) > 200
    for keyword, action in BASIC_PROFILE.items():
        assert tag_for_keyword(keyword) is not None, keyword
        assert action in "XZDU"
        if action == "U":
            assert dictionary_VR(tag_for_keyword(keyword)) == "UI", keyword
    # the attributes the issue names
    for keyword in ("PatientName", "PatientID", "PatientBirthDate", "StudyDate", "AcquisitionDate",
                    "InstitutionName", "DeviceSerialNumber", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
        assert keyword in BASIC_PROFILE


def test_uid_like_file_names():
    assert is_uid_like("1.2.840.113619.2.55.3.604688119.969.1268071029.320.dcm")
    assert is_uid_like("/data/1.3.6.1.4.1.9328.50.4.1")
    assert not is_uid_like("CT_small.dcm") and not is_uid_like("case.1.dcm") and not is_uid_like("1.2.dcm")


@pytest.fixture()
def identified(tmp_path):
    path = tmp_path / "scan.dcm"
    return path, write_identified_dicom(path)


def test_every_identifying_value_is_found(identified):
    path, values = identified
    identity = read_identity(path)
    found = identity.identifiers
    for keyword, value in values.items():
        assert found.get(keyword) == value, keyword
    assert "private (0029,1010)" in found
    # well-known UIDs (the CT image storage SOP class, the transfer syntax) are not identifiers
    assert "SOPClassUID" not in found and "TransferSyntaxUID" not in found
    assert identity.metadata["Modality"] == "CT" and "InstitutionName" not in identity.metadata
    text = " ".join(identity.metadata.values())
    assert not any(v in text for v in values.values() if len(v) > 4)


def test_deidentify_leaves_no_identifying_value(identified, tmp_path):
    path, values = identified
    ds = pydicom.dcmread(path)
    clean = deidentify(ds, salt="site-a")
    out = tmp_path / "clean.dcm"
    clean.save_as(out, enforce_file_format=True)
    raw = out.read_bytes()
    for keyword, value in values.items():
        if len(value) >= 5:  # short values (ages, sexes) could occur by chance
            assert value.encode() not in raw, keyword
    assert b"MLIDPRIVATE" not in raw and HOSTILE_NAME.encode() not in raw
    again = pydicom.dcmread(out)
    assert again.PatientIdentityRemoved == "YES"
    assert again.PatientName == "" and "InstitutionName" not in again and "DeviceSerialNumber" not in again
    assert again.SOPClassUID == ds.SOPClassUID  # kinds of objects stay
    # UIDs are replaced consistently: same salt same UID (series stay together), other salt other UID
    assert again.StudyInstanceUID != ds.StudyInstanceUID and again.StudyInstanceUID.startswith("2.25.")
    assert deidentify(ds, salt="site-a").StudyInstanceUID == again.StudyInstanceUID
    assert deidentify(ds, salt="site-b").StudyInstanceUID != again.StudyInstanceUID
    assert again.file_meta.MediaStorageSOPInstanceUID == again.SOPInstanceUID
    assert ds.PatientName == HOSTILE_NAME  # the input is untouched
    leftover = identifying_elements(again)
    assert all(v in ("", "ANONYMOUS") or v.startswith("2.25.") or v.startswith("<sequence") for v in leftover.values()), leftover


def test_read_identity_errors(tmp_path):
    with pytest.raises(FileFormatError, match="not found"):
        read_identity(tmp_path / "missing.dcm")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(FileFormatError, match="no readable DICOM"):
        read_identity(tmp_path)
