"""A WFDB signal file cut short and an empty file: one line saying so, not a library's words.

Seen: MIT-BIH record 100 with its ``.dat`` cut to 100000 bytes read as "100.hea is not a readable
WFDB record (ValueError: operands could not be broadcast together with shapes (33334,) (33333,))";
an empty ``scan.dcm`` (or ``.png``, ``.edf``) as "is not a file format medlens reads".
"""

from __future__ import annotations

import numpy as np
import pytest

from medlens.data.formats.read import read
from medlens.errors import FileFormatError

wfdb = pytest.importorskip("wfdb")


def _record(folder, fmt: str, n: int = 3000):
    signal = np.stack([np.sin(np.arange(n) / 20.0), np.cos(np.arange(n) / 30.0)], 1)
    wfdb.wrsamp("rec", fs=360, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=signal, fmt=[fmt, fmt],
                write_dir=str(folder))
    return folder / "rec.hea", folder / "rec.dat"


@pytest.mark.parametrize("fmt, per_sample", [("212", 1.5), ("16", 2)])
def test_a_truncated_signal_file_is_named_with_the_bytes_it_holds_and_the_header_declares(tmp_path, fmt, per_sample):
    hea, dat = _record(tmp_path, fmt)
    assert read(hea).values.shape == (2, 3000)
    dat.write_bytes(dat.read_bytes()[:1001])
    with pytest.raises(FileFormatError) as err:
        read(hea)
    assert str(err.value) == (f"WFDB record rec: rec.dat holds 1001 bytes, rec.hea declares 3000 samples per lead, "
                              f"{int(3000 * 2 * per_sample)} bytes: the signal file is truncated")


@pytest.mark.parametrize("name", ["scan.dcm", "scan.png", "rec.edf", "vol.nii", "a.npy"])
def test_an_empty_file_is_said_to_be_empty(tmp_path, name):
    (tmp_path / name).write_bytes(b"")
    with pytest.raises(FileFormatError, match=r"is empty \(0 bytes\)"):
        read(tmp_path / name)
