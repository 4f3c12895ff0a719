"""``medlens audit`` with a labels file naming more files than the folder holds (tour 33).

Seen: predict and train say "N row(s) of the labels file name no file in the folder: left out"
(a full labels table beside part of its images); audit left those rows out without a word, and
opened the folder's scans several times (each open re-read the labels file).
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from medlens.cli import main
from medlens.data.recipe import Recipe
from medlens.models import CNN, save_model


def test_audit_says_how_many_label_rows_name_no_file_and_reads_the_folder_once(tmp_path, capsys, monkeypatch):
    from medlens.data.formats.folders import ScanSet

    torch.manual_seed(0)
    model = save_model(CNN(2, 1, 2, widths=(4,), input_shape=(1, 16, 16)), tmp_path / "m.pt",
                       {"input_shape": [1, 16, 16], "class_names": ["a", "b"],
                        "recipe": Recipe(normalize="minmax", channels=1, size=(16, 16))})
    scans = tmp_path / "scans"
    scans.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        Image.fromarray(rng.integers(0, 255, (16, 16), dtype=np.uint8)).save(scans / f"s{k}.png")
    labels = tmp_path / "labels.csv"
    labels.write_text("case,label\ns0.png,a\ns1.png,b\ns2.png,a\ngone1.png,b\ngone2.png,a\n")
    opened = []
    real_init = ScanSet.__init__
    monkeypatch.setattr(ScanSet, "__init__", lambda self, *a, **k: opened.append(1) or real_init(self, *a, **k))
    assert main(["audit", "--model", str(model), "--data", str(scans), "--labels", str(labels),
                 "--methods", "gradient", "--quiet", "--out", str(tmp_path / "out")]) == 0
    assert "2 row(s) of the labels file name no file in the folder: left out" in capsys.readouterr().out
    assert len(opened) == 1
