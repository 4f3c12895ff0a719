"""Sliding-window requests a patch model cannot run are the user's input, said in one line with
exit 2: a roi the model's strides do not divide (a U-Net's skip connection fails to concatenate)
and a target class beyond the model's output channels (both were 'internal error' tracebacks)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from medlens.cli import main


class SkipNet(torch.nn.Module):
    """Down by 2, up by 2, concatenated with its input: the window must be even."""

    def __init__(self):
        super().__init__()
        self.head = torch.nn.Conv3d(2, 2, 1)

    def forward(self, x):
        up = F.interpolate(F.avg_pool3d(x, 2), scale_factor=2.0)
        return self.head(torch.cat([x, up], 1))


@pytest.mark.parametrize("roi, target, message", [
    ("7,7,7", "1", "the patch model rejects a window of (1, 1, 7, 7, 7) (does the roi fit the model"),
    ("8,8,8", "5", "target class 5 is out of range: the patch model has 2 output channels (0..1)"),
])
def test_unrunnable_sliding_requests_exit_2_in_one_line(tmp_path, capsys, roi, target, message):
    torch.manual_seed(0)
    torch.jit.script(SkipNet().eval()).save(str(tmp_path / "skip.ts"))
    np.save(tmp_path / "ct.npy", np.random.default_rng(0).normal(size=(12, 10, 9)).astype(np.float32))
    code = main(["explain", "--model", str(tmp_path / "skip.ts"), "--input", str(tmp_path / "ct.npy"),
                 "--inferer", "sliding-window", "--roi", roi, "--target-class", target, "--method", "gradient",
                 "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith("medlens: error:") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists()
