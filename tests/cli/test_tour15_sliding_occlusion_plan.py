"""``medlens explain --inferer sliding-window --method occlusion`` says its planned window
evaluations before it runs (stderr, not under --quiet) and, at its defaults, what it chose and
how to get a finer map (tour15)."""

from __future__ import annotations

import json
import re

import numpy as np
import torch

from medlens.cli import main


def _explain(tmp_path, *extra):
    torch.manual_seed(0)
    seg = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(4, 2, 1)).eval()
    torch.jit.script(seg).save(str(tmp_path / "patch.ts"))
    np.save(tmp_path / "mri.npy", np.random.default_rng(1).normal(size=(30, 26, 12)).astype(np.float32))
    out = tmp_path / "out"
    argv = ["explain", "--model", tmp_path / "patch.ts", "--input", tmp_path / "mri.npy", "--inferer", "sliding-window",
            "--roi", "16,16,16", "--sw-batch-size", "8", "--target-class", "1", "--method", "occlusion", "--out", out]
    assert main([str(a) for a in [*argv, *extra]]) == 0
    return json.loads((out / "summary.json").read_text())


def test_the_plan_is_said_before_the_run_and_the_defaults_in_the_note(tmp_path, capsys, monkeypatch):
    from medlens.core import cost

    monkeypatch.setattr(cost, "FLOP_BUDGET", 2e8)  # as if the patch model were costly: coarser windows, a fast test
    summary = _explain(tmp_path)
    captured = capsys.readouterr()
    planned = re.search(r"planned: occlusion window (\d+)x\d+x\d+ stride \d+x\d+x\d+: ([\d,]+) window evaluations",
                        captured.err)
    assert planned, captured.err
    evaluations = int(planned.group(2).replace(",", ""))
    assert summary["params"]["window_evaluations"] == evaluations
    assert summary["params"]["window"] == [int(planned.group(1))] * 3
    assert "pass window= and stride= for a finer map" in summary["extras"]["note"]
    assert "pass window= and stride=" in captured.out  # the case's note, printed with the result


def test_explicit_options_are_planned_as_given_and_quiet_says_nothing(tmp_path, capsys):
    summary = _explain(tmp_path, "--option", "window=8", "--option", "stride=8")
    assert "planned: occlusion window 8x8x8 stride 8x8x8: " in capsys.readouterr().err
    assert summary["params"]["window"] == 8 and "window_evaluations" not in summary["params"]
    assert "note" not in summary["extras"]  # nothing was chosen for the user
    _explain(tmp_path, "--quiet", "--option", "window=8", "--option", "stride=8")
    assert capsys.readouterr().err == ""
