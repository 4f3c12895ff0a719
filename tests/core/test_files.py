"""The one atomic writer, JSON writer, CSV writer and staged output folder (medlens.core.files)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from medlens.core.files import atomic_write, json_text, staged_folder, write_csv, write_json
from medlens.errors import InputError


def test_atomic_write_replaces_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    atomic_write(target, "old")
    atomic_write(target, b"new")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


def test_atomic_write_failure_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "a.txt"
    atomic_write(target, "old")
    import medlens.core.files as files

    def broken(source, dest):
        raise OSError("disk full")

    monkeypatch.setattr(files, "replace", broken)
    with pytest.raises(OSError):
        atomic_write(target, "new")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


def test_json_is_strict_nan_as_null_and_arrays_as_lists(tmp_path):
    path = write_json(tmp_path / "x.json", {"a": float("nan"), "b": [1.0, float("inf")],
                                            "c": np.float32(0.5), "d": torch.tensor([1, 2]), "e": np.arange(3)})
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": [1.0, None], "c": 0.5, "d": [1, 2], "e": [0, 1, 2]}
    assert json.loads(json_text({"p": tmp_path})) == {"p": str(tmp_path)}


def test_csv_round_trip_with_empty_nan_cells(tmp_path):
    path = write_csv(tmp_path / "r.csv", [{"case": "a", "p": 0.25}, {"case": "b,c", "p": math.nan}])
    rows = list(csv.DictReader(path.open()))
    assert rows == [{"case": "a", "p": "0.25"}, {"case": "b,c", "p": ""}]


def test_staged_folder_moves_on_success_and_cleans_on_failure(tmp_path):
    out = tmp_path / "out"
    with staged_folder(out) as stage:
        (stage / "a.txt").write_text("1")
    assert (out / "a.txt").read_text() == "1"
    with pytest.raises(RuntimeError):
        with staged_folder(out) as stage:
            (stage / "a.txt").write_text("2")
            raise RuntimeError("boom")
    assert (out / "a.txt").read_text() == "1"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_staged_folder_refuses_an_existing_file_before_work(tmp_path):
    target = tmp_path / "out"
    target.write_text("not a folder")
    ran = []
    with pytest.raises(InputError, match="existing file"):
        with staged_folder(target):
            ran.append(1)
    assert ran == []
