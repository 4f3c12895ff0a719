"""EDF files as hospital software writes them, not as pyedflib does by default.

Seen: an EDF+ file whose reserved field is blank (legacy EDF written by software that adds an
"EDF Annotations" channel all the same) was read with the annotation channel as a third lead of
text bytes.
"""

from __future__ import annotations

import numpy as np
import pytest

from medlens.data.formats.read import read
from medlens.errors import FileFormatError
from tests.data.test_formats import _write_edf as _write_edf_plus  # two uV leads, two annotations

pyedflib = pytest.importorskip("pyedflib")


def _as_legacy_edf(path):
    """The same file with the reserved field (bytes 192-236, "EDF+C") blank: a legacy EDF."""
    data = bytearray(path.read_bytes())
    assert data[192:197] in (b"EDF+C", b"BDF+C")
    data[192:236] = b" " * 44
    path.write_bytes(bytes(data))


def test_an_annotation_signal_in_a_legacy_edf_is_not_a_lead_and_keeps_its_annotations(tmp_path):
    x = _write_edf_plus(tmp_path / "rec.edf")
    _as_legacy_edf(tmp_path / "rec.edf")
    with pyedflib.EdfReader(str(tmp_path / "rec.edf")) as r:  # what pyedflib makes of it
        assert r.signals_in_file == 3 and r.getLabel(2) == "EDF Annotations"
    s = read(tmp_path / "rec.edf")
    assert s.format == "EDF" and s.channels == ("EEG Fz", "EEG Cz") and s.values.shape == (2, 128 * 6)
    assert s.fs == 128 and np.abs(s.values.numpy() - x).max() <= 800.0 / 65535 + 1e-6
    assert [(a.sample, a.symbol) for a in s.annotations] == [(192, "spike"), (512, "eyes closed")]
    assert s.annotations[0].duration == pytest.approx(0.5) and s.annotations[1].duration == 0.0


def _replace_in_header(path, old: bytes, new: bytes):
    data = path.read_bytes()
    assert data[:256 * 4].count(old) == 1
    path.write_bytes(data.replace(old, new, 1))


def test_a_latin1_patient_name_is_read_and_never_reaches_the_signal_repr(tmp_path):
    x = _write_edf_plus(tmp_path / "rec.edf", patient="Dupont^Rene")
    _replace_in_header(tmp_path / "rec.edf", b"Dupont^Rene", "Dupont^René".encode("latin-1"))
    with pytest.raises(OSError):  # pyedflib refuses the header
        pyedflib.EdfReader(str(tmp_path / "rec.edf"))
    s = read(tmp_path / "rec.edf")
    assert s.channels == ("EEG Fz", "EEG Cz") and np.abs(s.values.numpy() - x).max() <= 800.0 / 65535 + 1e-6
    assert [a.symbol for a in s.annotations] == ["spike", "eyes closed"]
    assert s.identifiers["patientname"] == "Dupont^Ren?"
    assert "Dupont" not in repr(s) and "Dupont" not in str(s.metadata)
    assert (tmp_path / "rec.edf").read_bytes().count("René".encode("latin-1")) == 1  # the file is left alone


@pytest.mark.parametrize("micro", ["µ".encode("latin-1"), "µ".encode("utf-8")], ids=["latin-1", "utf-8"])
def test_a_micro_sign_in_a_unit_is_read_as_u_and_the_lead_is_scaled_by_it(tmp_path, micro):
    """"µV" as hospital software writes it (pyedflib refuses the header): read as "uV", so a model
    that takes millivolts gets the lead divided by 1000."""
    from medlens.data.units import unit_scale

    x = _write_edf_plus(tmp_path / "rec.edf")
    _replace_in_header(tmp_path / "rec.edf", b"uV      uV      ", (micro + b"V").ljust(8) + b"uV      ")
    with pytest.raises(OSError):
        pyedflib.EdfReader(str(tmp_path / "rec.edf"))
    s = read(tmp_path / "rec.edf")
    assert s.units == ("uV", "uV") and s.channels == ("EEG Fz", "EEG Cz")
    assert np.abs(s.values.numpy() - x).max() <= 800.0 / 65535 + 1e-6
    assert unit_scale(s.units[0], "mV") == pytest.approx(1e-3)


def test_a_non_ascii_label_is_one_line_naming_the_field_and_signal(tmp_path):
    _write_edf_plus(tmp_path / "rec.edf")
    _replace_in_header(tmp_path / "rec.edf", b"EEG Fz", "EEG Fé".encode("latin-1"))
    with pytest.raises(FileFormatError) as err:
        read(tmp_path / "rec.edf")
    assert str(err.value) == (f"{tmp_path / 'rec.edf'}: the label of signal 1 holds bytes outside "
                              "printable ASCII, which the EDF specification forbids and pyedflib refuses")


def test_bdf_files_are_named_bdf_and_a_legacy_bdf_annotation_signal_is_read_with_3_byte_samples(tmp_path):
    x = 100 * np.sin(np.arange(64 * 3) / 5.0)
    with pyedflib.EdfWriter(str(tmp_path / "rec.bdf"), 1, file_type=pyedflib.FILETYPE_BDFPLUS) as f:
        f.setSignalHeaders([{"label": "EEG Fz", "dimension": "uV", "sample_frequency": 64, "physical_max": 400.0,
                             "physical_min": -400.0, "digital_max": 8388607, "digital_min": -8388608}])
        f.writeSamples([x])
        f.writeAnnotation(1.0, -1, "spike")
    s = read(tmp_path / "rec.bdf")
    assert s.format == "BDF+" and [(a.sample, a.symbol) for a in s.annotations] == [(64, "spike")]
    _as_legacy_edf(tmp_path / "rec.bdf")
    s = read(tmp_path / "rec.bdf")
    assert s.format == "BDF" and s.channels == ("EEG Fz",) and np.abs(s.values[0].numpy() - x).max() < 1e-3
    assert [(a.sample, a.symbol) for a in s.annotations] == [(64, "spike")]


def test_a_legacy_edf_holding_only_an_annotation_signal_holds_no_leads(tmp_path):
    with pyedflib.EdfWriter(str(tmp_path / "ann.edf"), 0, file_type=pyedflib.FILETYPE_EDFPLUS) as f:
        f.writeAnnotation(1.0, -1, "spike")
    _as_legacy_edf(tmp_path / "ann.edf")
    with pytest.raises(FileFormatError, match=r"ann\.edf holds no signals \(annotations only\)"):
        read(tmp_path / "ann.edf")


def test_units_are_spelt_in_ascii_within_their_field():
    from medlens.data.formats.edf_header import _ascii_unit

    assert _ascii_unit("°C".encode("latin-1").ljust(8)) == b"degC    "
    assert _ascii_unit("µV".encode("utf-8").ljust(8)) == b"uV      "
    assert _ascii_unit("μV".encode("utf-8").ljust(8)) == b"uV      "  # the Greek mu
    assert _ascii_unit(b"\xe9".ljust(8)) == b"?       "
    assert _ascii_unit("°°°°°°°C".encode("latin-1")) == b"degdegde"  # never longer than the field
