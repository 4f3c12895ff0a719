"""``medlens train --data FOLDER --labels L.csv``: scans train a model like a data set, and the
model explains one of them through the recipe stored in its file."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from medlens.cli import main


def _scans(tmp_path, n=12):
    folder = tmp_path / "scans"
    folder.mkdir()
    rng = np.random.default_rng(0)
    rows = ["case,label"]
    for k in range(n):
        image = (rng.random((20, 24)) * 60).astype(np.uint8)
        bright = k % 2 == 1
        if bright:
            image[5:15, 6:18] += 150
        Image.fromarray(image).save(folder / f"c{k:02d}.png")
        rows.append(f"c{k:02d}.png,{'lesion' if bright else 'normal'}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder, tmp_path / "labels.csv"


def test_a_folder_of_pngs_with_a_labels_file_trains_and_the_model_explains_one(tmp_path, capsys):
    from medlens.models import load_model

    folder, labels = _scans(tmp_path)
    model_path = tmp_path / "m.pt"
    assert main(["train", "--data", str(folder), "--labels", str(labels), "--size", "16,16", "--epochs", "1",
                 "--out", str(model_path), "--quiet"]) == 0
    assert "trained cnn on the user's folder of scans:" in capsys.readouterr().out  # not the temporary npz
    _model, meta = load_model(model_path)
    assert meta["class_names"] == ["lesion", "normal"]  # label words become the classes
    assert meta["data"] == "the user's folder of scans"  # the model file is shared: no folder name in it
    assert "scans" not in json.dumps({k: v for k, v in meta.items() if k != "data"}).replace("of scans", "")
    assert meta["input_shape"] == [1, 16, 16]
    assert meta["recipe"]["size"] == [16, 16] and meta["recipe"]["normalize"] == "minmax"
    out = tmp_path / "explained"
    assert main(["explain", "--model", str(model_path), "--input", str(folder / "c03.png"), "--method", "gradient",
                 "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["attribution_shape"] == [20, 24]  # back on the PNG's own grid
    assert set(summary["probabilities"]) == {"lesion", "normal"}


def test_training_on_scans_needs_a_labels_file(tmp_path, capsys):
    folder, _labels = _scans(tmp_path, n=3)
    assert main(["train", "--data", str(folder), "--out", str(tmp_path / "m.pt"), "--quiet"]) == 2
    assert "needs --labels" in capsys.readouterr().err


def test_the_python_api_trains_on_the_same_request(tmp_path):
    import medlens

    folder, labels = _scans(tmp_path)
    result = medlens.train(data=str(folder), labels=str(labels), size="16,16", epochs=1, out=str(tmp_path / "api.pt"))
    assert result.meta["class_names"] == ["lesion", "normal"] and (tmp_path / "api.pt").is_file()
