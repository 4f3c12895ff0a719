"""MIT-BIH record 100 has one ventricular beat (at 1518.9 s, in the validation stretch of its time split):
``train --annotation-labels N:normal,V:ventricular`` said "the training split holds one class only
(normal)" without saying that the V beat exists but lies outside the training stretch; with
``N:normal,A:atrial,V:ventricular`` it trained a three-class model that never saw a V beat, without a word."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.cli import main

wfdb = pytest.importorskip("wfdb")


def _record(folder, symbols):
    """A beat every 0.8 s with ``symbols`` in order (N narrow spikes, others wide and inverted)."""
    fs, seconds = 250, 0.8 * len(symbols) + 1.2
    t = np.arange(int(seconds * fs)) / fs
    signal = np.zeros((t.size, 2))
    at = [0.6 + 0.8 * k for k in range(len(symbols))]
    for when, sym in zip(at, symbols):
        width, amp = (0.015, 1.0) if sym == "N" else (0.06, -1.2)
        signal[:, 0] += amp * np.exp(-0.5 * ((t - when) / width) ** 2)
    signal[:, 1] = 0.5 * signal[:, 0] + 0.02 * np.random.default_rng(0).standard_normal(t.size)
    wfdb.wrsamp("rec", fs=fs, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=signal, fmt=["16", "16"],
                adc_gain=[1000.0, 1000.0], baseline=[0, 0], write_dir=str(folder))
    wfdb.wrann("rec", "atr", np.round(np.array(at) * fs).astype(int), np.array(symbols), write_dir=str(folder))


def test_a_class_only_outside_the_training_stretch_is_named_in_the_refusal(tmp_path, capsys):
    _record(tmp_path, ["N"] * 38 + ["V"] + ["N"])  # the V beat in the last 15% of the record
    assert main(["train", "--data", str(tmp_path), "--windows", "beats", "--annotation-labels",
                 "N:normal,V:ventricular", "--epochs", "1", "--out", str(tmp_path / "m.pt"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "ventricular has 1 window in all, none in the training split (0 train, 0 val, 1 test" in err


def test_a_third_class_never_trained_on_is_a_warning(tmp_path, capsys):
    _record(tmp_path, (["N", "N", "N", "A"] * 10)[:36] + ["N", "V", "N", "N"])
    assert main(["train", "--data", str(tmp_path), "--windows", "beats", "--annotation-labels",
                 "N:normal,A:atrial,V:ventricular", "--epochs", "1", "--out", str(tmp_path / "m.pt"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "warning: ventricular has 1 window in all, none in the training split" in out
    assert "the model never learns it" in out
