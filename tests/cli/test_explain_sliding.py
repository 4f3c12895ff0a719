"""``medlens explain --inferer sliding-window``: a patch model explained on a whole volume at its
own size, equal to autograd through MONAI's sliding_window_inference; bad requests in one line."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

from medlens.cli import main


def _run(argv):
    return main(["explain", *[str(a) for a in argv], "--quiet"])


@pytest.fixture
def patch_model(tmp_path):
    torch.manual_seed(0)
    seg = torch.nn.Sequential(torch.nn.Conv3d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv3d(4, 2, 1)).eval()
    torch.jit.script(seg).save(str(tmp_path / "patch.ts"))
    return seg, tmp_path / "patch.ts"


def test_whole_volume_map_equals_autograd_through_monai(patch_model, tmp_path):
    from monai.inferers import sliding_window_inference

    seg, path = patch_model
    volume = np.random.default_rng(1).normal(size=(30, 26, 12)).astype(np.float32)  # depth 12 < roi: padded
    np.save(tmp_path / "ct.npy", volume)
    mask = np.zeros(volume.shape, np.uint8)
    mask[5:20, 8:15, 2:9] = 1
    np.save(tmp_path / "mask.npy", mask)
    out = tmp_path / "out"
    assert _run(["--model", path, "--input", tmp_path / "ct.npy", "--inferer", "sliding-window", "--roi", "16,16,16",
                 "--overlap", "0.5", "--blend", "gaussian", "--sw-batch-size", "3", "--target-class", "1",
                 "--target-mask", tmp_path / "mask.npy", "--method", "gradient", "--out", out]) == 0
    x = torch.from_numpy(volume)[None, None].requires_grad_(True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        blended = sliding_window_inference(x, (16, 16, 16), 3, seg, overlap=0.5, mode="gaussian")
    score = (blended[0, 1] * torch.from_numpy(mask).float()).sum()
    (expected,) = torch.autograd.grad(score, x)
    got = np.load(out / "attribution.npy")
    assert got.shape == volume.shape
    np.testing.assert_allclose(got, expected[0, 0].numpy(), atol=1e-6)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["outputs"]["score"] == pytest.approx(float(score), rel=1e-5)
    assert summary["target_note"].startswith("sum of class 1 inside mask.npy through sliding windows (roi_size=(16, 16, 16)")
    assert summary["params"]["inferer"] == "sliding-window"


@pytest.mark.parametrize("args, message", [
    (["--roi", "16,16,16"], "--roi needs --inferer sliding-window"),
    (["--inferer", "sliding-window"], "needs --roi"),
    (["--inferer", "sliding-window", "--roi", "16,x"], "--roi takes positive integers"),
    (["--inferer", "sliding-window", "--roi", "16,16,16", "--method", "rise"], "does not run through sliding windows"),
    (["--inferer", "sliding-window", "--roi", "16,16,16", "--overlap", "1"], "overlap must be in [0, 1)"),
    (["--inferer", "sliding-window", "--roi", "16,16,16", "--target-class", "1", "--option", "n_steps=3"],
     "has no option 'n_steps'"),
    (["--inferer", "sliding-window", "--roi", "16,16,16", "--method", "gradient"], "give --target-class K"),
])
def test_bad_sliding_requests_exit_2_in_one_line(patch_model, tmp_path, capsys, args, message):
    np.save(tmp_path / "ct.npy", np.zeros((20, 20, 20), np.float32))
    argv = ["--model", patch_model[1], "--input", tmp_path / "ct.npy", "--out", tmp_path / "out"]
    if "--method" not in args:
        argv += ["--method", "gradient"]
    if "--target-class" not in args and "give --target-class" not in message:
        argv += ["--target-class", "1"]
    assert _run(argv + args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("medlens: error:") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists()
