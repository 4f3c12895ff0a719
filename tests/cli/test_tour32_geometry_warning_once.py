"""A series' slice grid problem (a missing slice, a gantry tilt) is said once per case on the
terminal (tour32): ``predict`` opened the data twice (its first readable case, then the run) and
said the tilt twice; ``explain`` of one series said it on stderr and again as the result's warning."""

from __future__ import annotations

import math

from medlens.cli import main
from tests.data.test_tour20_series_geometry import _series


def _tilted_with_a_gap(folder):
    tilt = math.radians(18.5)
    positions = [(0.0, 0.0, 2.5 * k) for k in (0, 1, 2, 4, 5, 6, 7, 8)]  # the slice at 7.5 mm is missing
    return _series(folder, positions, (1.0, 0.0, 0.0, 0.0, math.cos(tilt), -math.sin(tilt)))


def test_predict_says_each_problem_of_a_series_once(tmp_path, capsys, tiny_scan_model):
    (tmp_path / "export").mkdir()
    _tilted_with_a_gap(tmp_path / "export" / "ct")
    capsys.readouterr()
    assert main(["predict", "--model", str(tiny_scan_model), "--data", str(tmp_path / "export"), "--slice", "2",
                 "--out", str(tmp_path / "p"), "--quiet"]) == 0
    said = capsys.readouterr()
    terminal = said.out + said.err
    assert terminal.count("gantry tilt of 18.5 degrees") == 1
    assert terminal.count("1 slice missing") == 1


def test_explain_of_one_series_says_each_problem_once(tmp_path, capsys, tiny_scan_model):
    series = _tilted_with_a_gap(tmp_path / "ct")
    capsys.readouterr()
    assert main(["explain", "--model", str(tiny_scan_model), "--input", str(series), "--slice", "2",
                 "--method", "gradient", "--out", str(tmp_path / "e")]) == 0
    said = capsys.readouterr()
    terminal = said.out + said.err
    assert terminal.count("gantry tilt of 18.5 degrees") == 1
    assert terminal.count("1 slice missing") == 1
    assert "warning (slice_geometry): The DICOM series has a gantry tilt" in said.out
