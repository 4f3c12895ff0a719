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


def _killed_run_staging(out, tmp_path):
    """The staging folder a run killed mid-way leaves: its process is gone."""
    import subprocess
    import sys

    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(child.stdout)
    stale = tmp_path / f".{out.name}.partial-{dead_pid}-abcd1234"
    stale.mkdir()
    (stale / "half.npy").write_bytes(b"\0" * 64)
    return stale


def test_a_killed_runs_staging_is_removed_by_the_next_run_and_a_live_ones_kept(tmp_path):
    import os

    from medlens.core.files import clean_stale_staging

    out = tmp_path / "out"
    stale = _killed_run_staging(out, tmp_path)
    live = tmp_path / f".out.partial-{os.getpid()}-live0000"
    live.mkdir()
    other = tmp_path / ".other.partial-1-x"  # another output's staging: not ours to touch
    other.mkdir()
    with staged_folder(out) as stage:
        (stage / "a.txt").write_text("1")
    assert not stale.exists() and live.exists() and other.exists()
    assert clean_stale_staging(out) == []  # the live one stays
    live.rmdir()
    other.rmdir()


def test_the_folder_lock_is_exclusive_and_leaves_no_file(tmp_path):
    from medlens.core.files import folder_lock

    with folder_lock(tmp_path, busy="busy", name=".x.lock"):
        assert (tmp_path / ".x.lock").exists()
        with pytest.raises(InputError, match="busy"):
            with folder_lock(tmp_path, busy="busy", name=".x.lock"):
                pass
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError):
        with folder_lock(tmp_path, busy="busy", name=".x.lock"):
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_the_suite_wide_leftover_check_sees_staging_temporary_and_lock_files(tmp_path):
    from tests.conftest import leftovers

    for name in (".out.partial-123-abc", "audit/.audit.lock", "o/.summary.json.x1.tmp", "o/ok.json"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    assert leftovers(tmp_path) == [".out.partial-123-abc", "audit/.audit.lock", "o/.summary.json.x1.tmp"]
    for name in (".out.partial-123-abc", "audit/.audit.lock", "o/.summary.json.x1.tmp"):
        (tmp_path / name).unlink()

