"""``explain --index 5`` and ``report --index 5`` on one record (or scan) explained its first window
anyway, and the report named it case 5: a user picking the sixth beat of ``predictions.csv`` got the
window at 0 s without a word. ``--index`` is for data sets; elsewhere it is refused in one line."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.app.explain_file import explain_file
from medlens.app.report_case import ReportRequest, report_case
from medlens.errors import InputError
from medlens.models import CNN, save_model


@pytest.fixture(scope="module")
def model_and_signal(tmp_path_factory):
    folder = tmp_path_factory.mktemp("m")
    path = save_model(CNN(1, 1, 2, widths=(4,), input_shape=(1, 140)).eval(), folder / "m.pt",
                      {"input_shape": [1, 140], "class_names": ["normal", "abnormal"]})
    signal = folder / "beat.npy"
    np.save(signal, np.sin(np.linspace(0, 6, 140, dtype=np.float32))[None])
    return path, signal


def test_explain_refuses_an_index_into_one_file(model_and_signal, tmp_path):
    model, signal = model_and_signal
    with pytest.raises(InputError, match="--index picks a case of an npz data set"):
        explain_file(model=str(model), input=str(signal), index=5, out=str(tmp_path / "o"))
    assert not (tmp_path / "o").exists()
    explain_file(model=str(model), input=str(signal), out=str(tmp_path / "ok"))  # no index: as before


def test_report_refuses_an_index_into_one_file(model_and_signal, tmp_path):
    model, signal = model_and_signal
    with pytest.raises(InputError, match="a record's window is chosen with --start SECONDS"):
        report_case(ReportRequest(model=str(model), input=str(signal), index=5, out=str(tmp_path / "o"),
                                  methods=("gradient",)))
