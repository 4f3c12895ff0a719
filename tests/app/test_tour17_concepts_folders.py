"""``medlens concepts --data FOLDER [--labels L.csv]``: a folder of scans the model was trained on
gives the same concepts (fitted on the model's training split of it, held out on its test split) as
the same cases saved as an npz; the top-activating cases are named by their ids; a folder without
labels and without a recorded split is fitted with a seeded fifth held out, its labels unknown; a
folder of as many cases but in another order is not taken for the training folder."""

from __future__ import annotations

import json

import numpy as np

from medlens.cli import main
from medlens.data.datasets import load_dataset

from tests.app.tour17_scans import PATIENT, images, write_dicoms, write_model, write_npz, write_pngs

TRAIN, VAL, TEST = [0, 2, 3, 5, 6, 8], [1], [4, 7, 9]


def _concepts(tmp_path, data, out, *extra):
    args = ["concepts", "--model", str(tmp_path / "m.pt"), "--data", str(data), "--k", "2", "--epochs", "20",
            "--top", "2", "--method", "gradient", "--out", str(out), *extra]
    assert main(args) == 0
    return json.loads((out / "concepts.json").read_text())


def _trained_on(tmp_path, npz):
    """The model, recording the folder's split as ``medlens train`` does (positions, digests)."""
    from medlens.app.reference_cases import inputs_digest

    digest = inputs_digest(load_dataset(str(npz), "train").inputs)
    write_model(tmp_path / "m.pt", split_positions={"train": TRAIN, "val": VAL, "test": TEST},
                split_digests={"train": digest})


def test_a_folder_gives_the_concepts_of_its_npz(tmp_path):
    pixels, labels = images(), np.arange(10) % 2
    folder = write_pngs(tmp_path / "scans", pixels, labels)
    npz = write_npz(tmp_path / "same.npz", {"train": (pixels[TRAIN], labels[TRAIN]), "test": (pixels[TEST], labels[TEST])})
    _trained_on(tmp_path, npz)
    from_npz = _concepts(tmp_path, npz, tmp_path / "npz")
    from_folder = _concepts(tmp_path, folder, tmp_path / "folder", "--labels", str(tmp_path / "labels.csv"))
    for key in ("fidelity", "held_out_fidelity", "importance", "top_images"):
        assert from_folder[key] == from_npz[key], key
    assert from_folder["top_cases"] == [[f"case-{TRAIN[r]:04d}" for r in row] for row in from_npz["top_images"]]
    assert "test split" in from_folder["held_out"]
    html = (tmp_path / "folder" / "report.html").read_text()
    assert f"case case-{TRAIN[from_npz['top_images'][0][0]]:04d}" in html and "patient_0" not in html


def test_a_folder_without_labels_or_split_holds_out_a_seeded_fifth(tmp_path):
    write_model(tmp_path / "m.pt")
    folder = write_dicoms(tmp_path / "scans", images())
    summary = _concepts(tmp_path, folder, tmp_path / "c")
    assert summary["held_out_fidelity"] is not None and summary["held_out"].startswith("2 of the folder's 10 cases")
    written = (tmp_path / "c" / "concepts.json").read_text() + (tmp_path / "c" / "report.html").read_text()
    assert "label unknown" in written and PATIENT not in written and "PID_0" not in written
    assert "1.2.826.0.1.3680043.9.7177" in (tmp_path / "c" / "identifiers.csv").read_text()


def test_a_folder_in_another_order_is_not_the_training_folder(tmp_path, capsys):
    pixels, labels = images(), np.arange(10) % 2
    npz = write_npz(tmp_path / "same.npz", {"train": (pixels[TRAIN], labels[TRAIN]), "test": (pixels[TEST], labels[TEST])})
    _trained_on(tmp_path, npz)
    summary = _concepts(tmp_path, write_pngs(tmp_path / "scans", pixels[::-1]), tmp_path / "c")
    assert summary["fitted_on"] == "8 of the folder's 10 cases, at random (seed 0)"
    assert "fitted on 8 of the folder's 10 cases" in capsys.readouterr().out
