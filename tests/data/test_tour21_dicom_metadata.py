"""A DICOM reader's technical metadata holds nothing the basic profile removes (tour 21).

Seen: ``SeriesDescription`` and ``ProtocolName`` (free text that PS3.15 removes: "US abdomen
Johnathan Smithfield") were kept in ``Volume.metadata``, the fields every output may show; the
case report filtered them, but any other output reading ``metadata`` would not. They are kept
apart with the identifiers now; the pixel flags (BurnedInAnnotation) are technical metadata.
"""

from __future__ import annotations

from medlens.data.formats.deid import BASIC_PROFILE
from medlens.data.formats.dicom import load_dicom
from tests.data.burned_in_dicom import write_ultrasound


def test_no_profile_attribute_is_technical_metadata(tmp_path):
    import pydicom

    path = tmp_path / "us.dcm"
    write_ultrasound(path, "YES")
    ds = pydicom.dcmread(path)
    ds.SeriesDescription, ds.ProtocolName = "US abdomen Johnathan Smithfield", "Smithfield protocol"
    ds.save_as(path)
    volume = load_dicom(path)
    assert not set(volume.metadata) & set(BASIC_PROFILE)
    assert "Smithfield" not in repr(volume.metadata)
    assert volume.identifiers["SeriesDescription"] == "US abdomen Johnathan Smithfield"
    assert volume.metadata["BurnedInAnnotation"] == "YES"
