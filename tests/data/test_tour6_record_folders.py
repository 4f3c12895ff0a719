"""A folder of WFDB records as PhysioNet ships them: a multi-segment record (master header, its
segments and layout header), other annotators' files and signal files named by a header.

Seen on MIT-LCP's sample-data/multi-segment/s25047 (MIMIC layout): the folder gave 21 cases, the
master record and again each of its 18 segments (so training counted every window twice), the
layout header ("sampto must be greater than sampfrom") and the numerics' data file 3234460n.dat
("not a file format medlens reads"); 100.qrs and 03700181.sqrs (other annotators) were cases too.
"""

from __future__ import annotations

import numpy as np
import pytest

from medlens.data.formats.folders import scan_cases
from medlens.data.formats.read import read
from medlens.data.records import record_paths
from medlens.errors import FileFormatError

wfdb = pytest.importorskip("wfdb")


def _multi_segment(folder):
    """Master header 'rec' of two 300-sample segments and a layout header, as MIMIC lays them out."""
    for k, start in enumerate((0.0, 1.0), start=1):
        signal = (start + np.arange(300) / 300.0)[:, None].repeat(2, 1)
        wfdb.wrsamp(f"rec_{k}", fs=100, units=["mV", "mV"], sig_name=["II", "V"], p_signal=signal, fmt=["16", "16"],
                    adc_gain=[1000.0, 1000.0], baseline=[0, 0], write_dir=str(folder))
    (folder / "rec_layout.hea").write_text("rec_layout 2 100 0\n~ 0 1000/mV 16 0 0 0 0 II\n~ 0 1000/mV 16 0 0 0 0 V\n")
    (folder / "rec.hea").write_text("rec/3 2 100 600\nrec_layout 0\nrec_1 300\nrec_2 300\n")


def test_a_multi_segment_record_is_one_case_read_through_its_master_header(tmp_path):
    _multi_segment(tmp_path)
    assert [c.name for c in scan_cases(tmp_path)] == ["rec"]
    assert [p.name for p in record_paths(tmp_path)] == ["rec.hea"]
    signal = read(tmp_path / "rec.hea")
    assert tuple(signal.values.shape) == (2, 600)
    np.testing.assert_allclose(signal.values[0, [0, 299, 300, 599]].numpy(), [0.0, 0.997, 1.0, 1.997], atol=1e-3)


def test_a_layout_header_given_alone_is_refused_in_one_line(tmp_path):
    _multi_segment(tmp_path)
    with pytest.raises(FileFormatError, match=r"rec_layout.hea declares no samples \(the layout header of a multi-segment"):
        read(tmp_path / "rec_layout.hea")


def test_files_a_header_names_and_other_annotators_files_are_parts_of_their_record(tmp_path):
    wfdb.wrsamp("r1", fs=100, units=["mV"], sig_name=["II"], p_signal=np.zeros((200, 1)), fmt=["16"],
                adc_gain=[1000.0], baseline=[0], write_dir=str(tmp_path))
    (tmp_path / "r1.hea").write_text((tmp_path / "r1.hea").read_text().replace("r1.dat", "r1n.dat"))
    (tmp_path / "r1.dat").rename(tmp_path / "r1n.dat")  # a signal file not named like its record
    wfdb.wrann("r1", "qrs", np.array([50, 150]), np.array(["N", "N"]), write_dir=str(tmp_path))
    (tmp_path / "other.qrs").write_bytes(b"\x00\x00")  # no record of that name: still a (failing) case
    assert [c.name for c in scan_cases(tmp_path)] == ["other.qrs", "r1"]
    assert tuple(read(tmp_path / "r1.hea").values.shape) == (1, 200)


def test_a_multi_segment_record_of_gaps_only_has_unknown_units_not_the_word_none(tmp_path):
    """Seen on MIT-LCP's s00001-2896-10-09-01-56 (one empty segment): units ('None', 'None', ...)."""
    _multi_segment(tmp_path)
    (tmp_path / "gap.hea").write_text("gap/2 2 100 300\nrec_layout 0\n~ 300\n")
    signal = read(tmp_path / "gap.hea")
    assert signal.units == ("", "") and bool(signal.values.isnan().all())
