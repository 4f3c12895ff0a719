"""``predict``, ``evaluate`` and ``audit`` accepted ``--leads`` for a model trained on records and ignored
it: MIT-BIH 100 as ``100_3chan`` (leads I, II, III) was refused with "lead 'MLII' is not in the record"
whatever ``--leads I,II`` said, where ``explain --leads I,II`` took it. The leads now replace the model's."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.app.inputs import RecipeOptions
from medlens.app.predict import predict_cases
from medlens.cli import main
from medlens.errors import InputError
from tests.app.kinds_data import write_beats_record

wfdb = pytest.importorskip("wfdb")


@pytest.fixture(scope="module")
def model_and_renamed_record(tmp_path_factory):
    folder = tmp_path_factory.mktemp("records")
    (folder / "train").mkdir()
    write_beats_record(folder / "train", seconds=12.0)
    model = folder / "beats.pt"
    assert main(["train", "--data", str(folder / "train"), "--windows", "beats", "--annotation-labels",
                 "N:normal,V:ventricular", "--epochs", "1", "--out", str(model), "--quiet"]) == 0
    (folder / "other").mkdir()
    write_beats_record(folder / "other", seconds=12.0)
    record = wfdb.rdrecord(str(folder / "other" / "rec"))
    signal = np.concatenate([record.p_signal, record.p_signal[:, :1]], 1)
    wfdb.wrsamp("rec", fs=250, units=["mV"] * 3, sig_name=["I", "II", "III"], p_signal=signal, fmt=["16"] * 3,
                adc_gain=[1000.0] * 3, baseline=[0] * 3, write_dir=str(folder / "other"))
    return model, folder / "other"


def test_predict_cuts_the_windows_from_the_leads_given(model_and_renamed_record, tmp_path):
    model, other = model_and_renamed_record
    result = predict_cases(model=str(model), data=str(other), out=str(tmp_path / "out"), quiet=True,
                           recipe=RecipeOptions(leads="I,II"))
    assert result.n_cases == 14


def test_as_many_leads_as_the_model_takes(model_and_renamed_record, tmp_path):
    model, other = model_and_renamed_record
    with pytest.raises(InputError, match=r"--leads names 1 lead\(s\) but the model takes 2 \(MLII, V5\)"):
        predict_cases(model=str(model), data=str(other), out=str(tmp_path / "out"), quiet=True,
                      recipe=RecipeOptions(leads="I"))
