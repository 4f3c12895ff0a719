"""WFDB leads stored with several samples per frame keep their own rate.

Seen on MIT-LCP's sample records: test_generator_2 (200 samples a frame, a frame a second) read as
12 leads at 1 Hz, each second averaged into one value; mixedsignals (ECG at 4 samples a frame,
blood pressure at 2, respiration at 1) read at the frame rate of 62.47 Hz, the ECG averaged
down from 249.89 Hz. wfdb's default smooths frames; medlens now reads every lead at the highest
rate, the slower ones interpolated, as it does for EDF.
"""

from __future__ import annotations

import numpy as np
import pytest

from medlens.data.formats.read import read

wfdb = pytest.importorskip("wfdb")


def _record(folder, frames: int = 50):
    """Lead 'fast' at 4 samples a frame (400 Hz at a 100 Hz frame rate), lead 'slow' at 1."""
    t_fast = np.arange(frames * 4) / 400.0
    fast = np.round(np.sin(2 * np.pi * 37 * t_fast), 3)
    slow = np.round(np.arange(frames) / 100.0, 3)  # a ramp: linear interpolation keeps it exact
    wfdb.wrsamp("mixed", fs=100, units=["mV", "mmHg"], sig_name=["fast", "slow"], e_p_signal=[fast, slow],
                samps_per_frame=[4, 1], fmt=["16", "16"], adc_gain=[1000.0, 1000.0], baseline=[0, 0],
                write_dir=str(folder))
    wfdb.wrann("mixed", "atr", np.array([10, 30]), np.array(["N", "V"]), write_dir=str(folder))
    return fast, slow


def test_every_lead_at_the_highest_rate_with_the_slower_one_interpolated(tmp_path):
    fast, slow = _record(tmp_path)
    signal = read(tmp_path / "mixed.hea")
    assert signal.fs == 400.0 and tuple(signal.values.shape) == (2, 200)
    np.testing.assert_allclose(signal.values[0].numpy(), fast, atol=1e-3)  # not averaged over its frames
    t = np.arange(200) / 400.0
    np.testing.assert_allclose(signal.values[1].numpy(), np.interp(t, np.arange(50) / 100.0, slow), atol=1e-3)
    assert signal.metadata["InterpolatedChannels"] == "slow"
    assert signal.metadata["DurationSeconds"] == "0.5"


def test_annotation_times_counted_in_frames_move_to_the_highest_rate(tmp_path):
    _record(tmp_path)
    signal = read(tmp_path / "mixed.hea")
    assert [(a.sample, a.symbol) for a in signal.annotations] == [(40, "N"), (120, "V")]  # frames 10 and 30 at 0.1 and 0.3 s
