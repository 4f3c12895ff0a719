"""``medlens report`` on a segmentation model (a MONAI-style patch U-Net given a whole CT): it
said "target 1062287 is out of range: the model has 2 classes", the argmax of the flattened
segmentation map; now one line says a report explains classifiers and where a segmentation model
is explained (tour20)."""

from __future__ import annotations

import numpy as np
import torch

from medlens.cli import main


def test_a_segmentation_model_is_refused_in_one_line(tmp_path, capsys):
    torch.manual_seed(0)
    seg = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(4, 2, 1)).eval()
    torch.jit.script(seg).save(str(tmp_path / "seg.ts"))
    ct = np.where(np.random.default_rng(0).random((12, 16, 16)) < 0.5, -1000, 40).astype(np.float32)
    np.save(tmp_path / "ct.npy", ct)
    code = main(["report", "--model", str(tmp_path / "seg.ts"), "--input", str(tmp_path / "ct.npy"),
                 "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0] == ("medlens: error: a case report explains a classifier (one score per class), but the model's "
                      "output has shape (1, 2, 12, 16, 16): explain a segmentation model with medlens explain "
                      "--target-class K (--inferer sliding-window --roi D,H,W for a patch model)")
    assert not (tmp_path / "out" / "report.html").exists()
