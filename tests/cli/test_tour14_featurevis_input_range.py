"""``medlens featurevis --input-range``: an infinite or reversed range is named as such, not
reported as the model's NaN outputs on the range's middle."""

from __future__ import annotations

import pytest
import torch

from medlens.cli import main
from medlens.models import CNN, save_model


@pytest.mark.parametrize("bad", ["0,inf", "-inf,1"])
def test_bad_input_range_is_named(tmp_path, capsys, bad):
    torch.manual_seed(0)
    path = save_model(CNN(2, 1, 2, widths=(4,), input_shape=(1, 8, 8)).eval(), tmp_path / "m.pt",
                      {"input_shape": [1, 8, 8]})
    code = main(["featurevis", "--model", str(path), "--out", str(tmp_path / "o"), "--steps", "1", "--layer",
                 "features.block1.act", f"--input-range={bad}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "--input-range must be LOW,HIGH" in err and "NaN or infinite outputs" not in err
    assert not (tmp_path / "o").exists()
