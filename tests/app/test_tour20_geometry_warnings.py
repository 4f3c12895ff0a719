"""What a DICOM series' grid gets wrong (gantry tilt, a missing slice) reaches summary.json's
warnings, not only stderr (tour20): a folder run, or a reader of the outputs, sees it; a patch
model explained through sliding windows (a TorchScript file recording no training facts) too."""

from __future__ import annotations

import json
import math

import torch

from medlens.cli import main
from tests.data.test_tour20_series_geometry import _series


def test_a_tilted_series_with_a_missing_slice_is_said_in_the_summary(tmp_path):
    tilt = math.radians(18.5)
    positions = [(0.0, 0.0, 2.5 * k) for k in (0, 1, 2, 4, 5, 6, 7, 8)]  # the slice at 7.5 mm is missing
    series = _series(tmp_path / "ct", positions, (1.0, 0.0, 0.0, 0.0, math.cos(tilt), -math.sin(tilt)))
    torch.manual_seed(0)
    seg = torch.nn.Sequential(torch.nn.Conv3d(1, 2, 3, padding=1)).eval()
    torch.jit.script(seg).save(str(tmp_path / "patch.ts"))
    out = tmp_path / "out"
    assert main(["explain", "--model", str(tmp_path / "patch.ts"), "--input", str(series), "--inferer", "sliding-window",
                 "--roi", "8,16,16", "--target-class", "1", "--method", "gradient", "--out", str(out), "--quiet"]) == 0
    said = [w["message"] for w in json.loads((out / "summary.json").read_text())["warnings"]
            if w["code"] == "slice_geometry"]
    assert len(said) == 2
    assert said[0].startswith("The DICOM series has 1 slice missing (a gap of 4.742 mm after slice 3")
    assert said[1].startswith("The DICOM series has a gantry tilt of 18.5 degrees")
