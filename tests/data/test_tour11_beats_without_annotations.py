"""A record with no annotation given to beat windows was refused with "no record in FOLDER gave a
labelled window", the reason (no ``.atr`` file; or annotations, none of the mapped symbols) dropped on the
way. MIT-BIH 100's header copied without its ``100.atr`` (wfdb-python's ``100-no-len``) showed it."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.data.records import windows_from_folder
from medlens.errors import InputError

wfdb = pytest.importorskip("wfdb")


def _record(folder, symbols=None):
    t = np.arange(250 * 6) / 250
    signal = np.stack([np.sin(2 * np.pi * 1.2 * t), np.cos(2 * np.pi * 1.2 * t)], 1)
    wfdb.wrsamp("rec", fs=250, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=signal, fmt=["16", "16"],
                write_dir=str(folder))
    if symbols:
        wfdb.wrann("rec", "atr", np.arange(250, 250 + 200 * len(symbols), 200), np.array(symbols),
                   write_dir=str(folder))


def test_a_record_without_annotations_is_refused_naming_the_missing_annotation_file(tmp_path):
    _record(tmp_path)
    with pytest.raises(InputError) as err:
        windows_from_folder(tmp_path, windows="beats", annotation_labels="N:normal,V:ventricular")
    message = str(err.value)
    assert "\n" not in message and "no annotation in rec" in message and ".atr file" in message


def test_a_record_with_other_symbols_says_which_it_has(tmp_path):
    _record(tmp_path, ["+", "A", "A", "N"])
    with pytest.raises(InputError) as err:
        windows_from_folder(tmp_path, windows="beats", annotation_labels="V:ventricular,F:fusion")
    assert "its annotations: 'A' 2, '+' 1, 'N' 1" in str(err.value)
