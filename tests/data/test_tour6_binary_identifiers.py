"""Private binary data shown with --show-identifiers: readable, with no control characters.

Seen: ``medlens report --show-identifiers`` on pydicom's CT_small.dcm wrote GE's private
(0043,1028) "CT01\\x00\\x00\\x00HiSpeed CT/i\\x00..." into report.html as it was: 2135 NUL and
other control characters in the page.
"""

from __future__ import annotations

import pytest

pydicom = pytest.importorskip("pydicom")

from medlens.data.formats.deid import identifying_elements  # noqa: E402


def _dataset():
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.PatientName = "Doe^Jane"
    ds.add_new(0x00431028, "OB", b"CT01\x00\x00\x00HiSpeed\x01\x02" + bytes(range(200, 256)))
    ds.add_new(0x00431030, "OB", b"ASCII TEXT\x00")
    ds.add_new(0x00431031, "LO", "tab\there\x07bell")
    return ds


def test_binary_private_values_show_their_size_and_ascii_characters_only():
    found = identifying_elements(_dataset())
    value = found["private (0043,1028)"]
    assert value.startswith("<72 bytes: CT01...HiSpeed..") and value.endswith(">")
    assert all(32 <= ord(c) < 127 for c in value)
    assert found["private (0043,1030)"] == "ASCII TEXT"  # text padded with NUL is text
    assert found["private (0043,1031)"] == "tab\there bell"
    assert found["PatientName"] == "Doe^Jane"
