"""A model whose windows are cut before an EEG's T1/T2 events (EDF+ annotations used as windows) was
warned that a window "starts 0.5 s before a beat" and that "the nearest 'T1' beat" lies elsewhere. The
warning now says "event" unless the annotations are WFDB beat codes."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.data.formats.signals import load_signal
from medlens.data.record_cases import beat_alignment

pyedflib = pytest.importorskip("pyedflib")


def _eeg_with_events(path):
    fs = 128
    with pyedflib.EdfWriter(str(path), 1, file_type=pyedflib.FILETYPE_EDFPLUS) as f:
        f.setSignalHeaders([{"label": "Fc5.", "dimension": "uV", "sample_frequency": fs, "physical_max": 500.0,
                             "physical_min": -500.0, "digital_max": 32767, "digital_min": -32768}])
        f.writeSamples([np.sin(np.arange(fs * 8) / 7.0)])
        f.writeAnnotation(2.0, 4.1, "T1")
        f.writeAnnotation(6.0, 1.0, "T2")
    return load_signal(path)


def test_an_eeg_event_is_called_an_event(tmp_path):
    record = _eeg_with_events(tmp_path / "eeg.edf")
    settings = {"kind": "beats", "before": 0.5, "fs": 128.0, "annotation_labels": {"T1": "left", "T2": "right"}}
    text = beat_alignment(settings, record, 2.0)
    assert "before an event" in text and "nearest 'T1' event is at 2.000 s" in text and "beat" not in text


def test_wfdb_beat_codes_are_still_beats(tmp_path):
    record = _eeg_with_events(tmp_path / "eeg.edf")
    settings = {"kind": "beats", "before": 0.5, "fs": 128.0, "annotation_labels": {"T1": "x"}}
    assert "event" in beat_alignment(settings, record, 2.0)
    settings["annotation_labels"] = {"N": "normal", "V": "ventricular", "T1": "x"}
    assert "event" in beat_alignment(settings, record, 2.0)  # one non-beat code among them: events
    from medlens.data.record_cases import annotation_noun
    assert annotation_noun(["N", "V"]) == "beat" and annotation_noun(["T1"]) == "event"
