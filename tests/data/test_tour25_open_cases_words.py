"""``medlens.open_cases(folder, labels=...)`` reads a labels file whose labels are words, as the
README's "The commands, from Python" calls it (no model, so no class names given): the classes
are the file's words, sorted, as ``medlens train`` names them. Before, the README's own
``scans/labels.csv`` ("normal or benign", ...) was refused: "label 'normal or benign' ... is
neither a class index nor a class name"."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import medlens
from medlens.errors import InputError


def _scans(tmp_path, labels):
    folder = tmp_path / "scans"
    folder.mkdir()
    rows = ["case,label"]
    for i, label in enumerate(labels):
        Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(folder / f"c{i}.png")
        rows.append(f"c{i}.png,{label}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_word_labels_name_the_classes_in_sorted_order(tmp_path):
    folder = _scans(tmp_path, ["normal or benign", "malignant", "normal or benign"])
    cases = medlens.open_cases(folder, labels=folder / "labels.csv")
    assert cases.class_names == ("malignant", "normal or benign")
    assert [cases.case(i).label for i in range(3)] == [1, 0, 1]


def test_given_class_names_still_decide_and_an_empty_tuple_asks_for_indices(tmp_path):
    folder = _scans(tmp_path, ["b", "a"])
    assert [medlens.open_cases(folder, labels=folder / "labels.csv", class_names=("b", "a")).case(i).label
            for i in range(2)] == [0, 1]
    with pytest.raises(InputError, match="neither a class index nor a class name"):
        medlens.open_cases(folder, labels=folder / "labels.csv", class_names=())
