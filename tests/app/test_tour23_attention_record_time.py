"""``medlens attention`` on a beat model's records drew each example window on a time axis from 0 s,
titled "sequence 3": nothing told where in the record the window lies. The figure's axis is now
the record's time, labelled so, and its title names the window (as predictions.csv names it) with
its start; identifiers.csv maps the window names' case ids to the records."""

from __future__ import annotations

import csv

import pytest

from medlens.cli import main
from medlens.models import save_model
from medlens.models.attention_rnn import AttentionRNN
from tests.app.kinds_data import write_beats_record

pytest.importorskip("wfdb")


def test_example_figures_are_drawn_in_record_time_and_name_their_window(tmp_path, monkeypatch):
    import medlens.viz.signals as signals

    folder = tmp_path / "records"
    folder.mkdir()
    beats = write_beats_record(folder, seconds=6.0)
    windows = {"fs": 250.0, "before": 0.25, "after": 0.45, "leads": ["MLII", "V5"], "normalize": "none",
               "kind": "beats", "annotation_labels": {"N": "normal", "V": "ventricular"}, "step": None}
    net = AttentionRNN(2, in_channels=2, hidden_size=6, attention_size=5, front_channels=4).eval()
    model = save_model(net, tmp_path / "beats.pt", {"class_names": ["normal", "ventricular"],
                                                    "input_shape": [2, 175], "windows": windows})
    drawn = []
    real = signals.signal_strips_figure
    monkeypatch.setattr(signals, "signal_strips_figure", lambda *a, **k: drawn.append(real(*a, **k)) or drawn[-1])
    out = tmp_path / "a"
    assert main(["attention", "--model", str(model), "--data", str(folder), "--limit", "4", "--permutations", "1",
                 "--ig-steps", "0", "--examples", "4", "--out", str(out), "--quiet"]) == 0
    assert drawn
    starts = {round(s / 250 - 0.25, 3): s for s, _ in beats}
    for fig in drawn:
        title = fig.axes[0].get_title()
        low = fig.axes[-1].get_xlim()[0]
        assert fig.axes[-1].get_xlabel() == "time in the record (s)"
        assert round(low, 3) in starts  # the window's own start in the record, not 0
        assert f"window case-0000@{starts[round(low, 3)] / 250:.3f}s (from {low:.3f} s in its record)" in title
    with open(out / "identifiers.csv", newline="") as fh:
        assert list(csv.DictReader(fh)) == [{"case": "case-0000", "record": "rec"}]
