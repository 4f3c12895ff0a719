"""A model trained on one class only was written (``num_classes = 1``, "val accuracy 0.000") and then
failed every later command with an unrelated message: training refuses it in one line, whichever route
the labels come by (a folder of scans with a labels file, an npz data set)."""

from __future__ import annotations

import numpy as np

from medlens.cli import main
from tests.app.test_train_scans import _scans


def _one_class_scans(tmp_path):
    folder, labels = _scans(tmp_path)  # then every case gets one label
    rows = labels.read_text(encoding="utf-8").splitlines()
    labels.write_text("\n".join([rows[0]] + [row.split(",")[0] + ",pneumonia" for row in rows[1:]]) + "\n",
                      encoding="utf-8")
    return folder, labels


def test_scans_of_one_class_are_refused_in_one_line_and_no_model_is_written(tmp_path, capsys):
    folder, labels = _one_class_scans(tmp_path)
    out = tmp_path / "m.pt"
    assert main(["train", "--data", str(folder), "--labels", str(labels), "--size", "16,16", "--epochs", "1",
                 "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "one class only (pneumonia)" in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_an_npz_whose_training_labels_are_one_class_is_refused(tmp_path, capsys):
    rng = np.random.default_rng(1)
    arrays = {f"{s}_images": rng.random((n, 12, 12)).astype(np.float32) for s, n in (("train", 8), ("val", 4), ("test", 4))}
    arrays.update(train_labels=np.zeros(8, np.int64), val_labels=np.array([0, 1, 0, 1]), test_labels=np.array([0, 1, 0, 1]),
                  class_names=np.array(["normal", "lesion"]))
    np.savez(tmp_path / "d.npz", **arrays)
    assert main(["train", "--data", str(tmp_path / "d.npz"), "--epochs", "1", "--out", str(tmp_path / "m.pt"),
                 "--quiet"]) == 2
    assert "one class only (normal)" in capsys.readouterr().err
