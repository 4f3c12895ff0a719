"""``medlens predict`` on signal records said nothing of windows unlike the model's training data (a
record whose leads are flat and noise got its probabilities like any other, where ``explain`` warns), nor
of the beats a stretch of missing samples cost (22 annotated beats, 19 predictions, no word). It now runs
the familiarity check on every window (``familiarity.csv``, the note first) and says what cutting the
windows left out."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from medlens.app.predict import predict_cases
from medlens.cli import main
from tests.app.kinds_data import write_beats_record

wfdb = pytest.importorskip("wfdb")


@pytest.fixture(scope="module")
def beats_model(tmp_path_factory):
    folder = tmp_path_factory.mktemp("records")
    write_beats_record(folder, seconds=40.0)
    model = folder.parent / "beats.pt"
    assert main(["train", "--data", str(folder), "--windows", "beats", "--annotation-labels", "N:normal,V:ventricular",
                 "--epochs", "2", "--out", str(model), "--quiet"]) == 0
    return model


def _write(folder, signal, beats):
    folder.mkdir()
    wfdb.wrsamp("odd", fs=250, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=signal, fmt=["16", "16"],
                adc_gain=[1000.0, 1000.0], baseline=[0, 0], write_dir=str(folder))
    wfdb.wrann("odd", "atr", np.asarray(beats), np.array(["N"] * len(beats)), write_dir=str(folder))


def test_predict_names_the_windows_unlike_the_training_data(beats_model, tmp_path):
    rng = np.random.default_rng(0)
    signal = np.stack([np.zeros(250 * 10), 0.5 * rng.standard_normal(250 * 10)], 1)  # a flat lead and noise
    _write(tmp_path / "odd", signal, list(range(250, 2250, 200)))
    result = predict_cases(model=str(beats_model), data=str(tmp_path / "odd"), out=str(tmp_path / "out"), quiet=True)
    rows = list(csv.DictReader((tmp_path / "out" / "familiarity.csv").open()))
    assert len(rows) == 10 and all(r["unlike_training_data"] == "1" for r in rows)
    assert result.notes[0].startswith("10 of the 10 predicted cases (100%) are unlike the model's training data")


def test_predict_on_the_training_record_writes_familiarity(beats_model, tmp_path):
    folder = tmp_path / "rec"
    folder.mkdir()
    write_beats_record(folder, seconds=40.0)
    result = predict_cases(model=str(beats_model), data=str(folder), out=str(tmp_path / "out"), quiet=True)
    rows = list(csv.DictReader((tmp_path / "out" / "familiarity.csv").open()))
    assert len(rows) == result.n_cases > 40 and sum(r["unlike_training_data"] == "1" for r in rows) <= 5
    assert not any("unlike" in n for n in result.notes) or result.notes[0].startswith(("1 of", "2 of", "3 of"))


def test_predict_says_what_missing_samples_cost(beats_model, tmp_path):
    folder = tmp_path / "gap"
    folder.mkdir()
    beats = write_beats_record(folder, name="gap", seconds=20.0)
    record = wfdb.rdrecord(str(folder / "gap"))
    signal = record.p_signal.copy()
    signal[250 * 5: 250 * 7, 0] = np.nan  # WFDB's invalid value: missing samples for 2 s
    wfdb.wrsamp("gap", fs=250, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=signal, fmt=["16", "16"],
                adc_gain=[1000.0, 1000.0], baseline=[0, 0], write_dir=str(folder))
    result = predict_cases(model=str(beats_model), data=str(folder), out=str(tmp_path / "out"), quiet=True)
    lost = sum(1 for s, _ in beats if 250 * 5 - 0.45 * 250 < s < 250 * 7 + 0.25 * 250)
    assert f"left out when cutting the windows: 1 (unmapped symbol '+'); {lost} (missing samples)" in result.notes
