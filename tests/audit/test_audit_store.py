"""The store: resume skips done cases, a SIGKILLed run resumes to the same cases.csv, settings are checked."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from medlens.audit.run import analyse, plan_batches, run_audit
from medlens.audit.sources import SourceSpec
from medlens.audit.store import DB_FILE, AuditStore
from medlens.errors import MedlensError
from medlens.models import load_model
from tests.audit.conftest import fast_settings

ROOT = Path(__file__).resolve().parents[2]


def test_plan_batches_keeps_fixed_batches():
    assert plan_batches(10, 4, set()) == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert plan_batches(10, 4, {0, 1, 2, 3, 8}) == [[4, 5, 6, 7], [8, 9]]  # a partly done batch is redone whole


def test_resume_adds_nothing_and_keeps_results(tmp_path, lesion_npz, model_file):
    model, meta = load_model(model_file)
    spec = SourceSpec(str(lesion_npz), "test", (1, 24, 24))
    first = run_audit(model, spec, tmp_path, fast_settings(), meta=meta, limit=12)
    assert (first.n_cases, first.n_new) == (12, 12)
    with AuditStore(tmp_path / DB_FILE) as store:
        before = store.results()
    again = run_audit(model, spec, tmp_path, fast_settings(), meta=meta, limit=12)
    assert again.n_new == 0
    with AuditStore(tmp_path / DB_FILE) as store:
        after = store.results()
    assert [r.metrics for r in before] == [r.metrics for r in after]
    assert all(torch.equal(a.summaries, b.summaries) for a, b in zip(before, after))
    # masks exist in the benchmark: localisation numbers are there for lesion cases
    assert any(r.metrics["gradcam.pointing_game"] == r.metrics["gradcam.pointing_game"] for r in after)
    with pytest.raises(MedlensError, match="another settings"):
        run_audit(model, spec, tmp_path, fast_settings(seed=1), meta=meta, limit=12)
    other = load_model(model_file)[0]
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    with pytest.raises(MedlensError, match="another model"):
        run_audit(other, spec, tmp_path, fast_settings(), meta=meta, limit=12)
    fresh = run_audit(other, spec, tmp_path, fast_settings(), meta=meta, limit=12, restart=True)
    assert fresh.n_new == 12
    more = run_audit(other, spec, tmp_path, fast_settings(), meta=meta, limit=16)  # extends the run
    assert more.n_new == 4


_RUNNER = """
import sys
from medlens.audit.run import analyse, run_audit
from medlens.audit.sources import SourceSpec
from medlens.models import load_model
from tests.audit.conftest import fast_settings
model, meta = load_model(sys.argv[2])
run = run_audit(model, SourceSpec(sys.argv[1], "test", (1, 24, 24)), sys.argv[3], fast_settings(cases_per_batch=2), meta=meta)
analyse(sys.argv[3], parquet=False)
print(f"new {run.n_new}")
"""


def test_sigkill_then_resume_equals_an_uninterrupted_run(tmp_path, lesion_npz, model_file):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    model, meta = load_model(model_file)
    run_audit(model, SourceSpec(str(lesion_npz), "test", (1, 24, 24)), whole, fast_settings(cases_per_batch=2), meta=meta)
    analyse(whole, parquet=False)
    command = [sys.executable, "-c", _RUNNER, str(lesion_npz), str(model_file), str(killed)]
    proc = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = killed / DB_FILE
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                with sqlite3.connect(db, timeout=1) as con:
                    if con.execute("SELECT COUNT(*) FROM cases").fetchone()[0] >= 6:
                        break
            except sqlite3.OperationalError:
                pass
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as con:
        at_kill = con.execute("SELECT COUNT(*) FROM cases").fetchone()[0]
    assert 6 <= at_kill < 24, f"the run was not killed part-way ({at_kill} of 24 cases committed)"
    assert not (killed / "cases.csv").exists()
    done = subprocess.run(command, check=True, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert f"new {24 - at_kill}" in done.stdout
    assert (killed / "cases.csv").read_text() == (whole / "cases.csv").read_text()
    assert (killed / "clusters.csv").read_text() == (whole / "clusters.csv").read_text()
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT COUNT(*), COUNT(DISTINCT idx) FROM cases").fetchone()
    assert rows == (24, 24)


def test_exports(tmp_path, lesion_npz, model_file):
    pa = pytest.importorskip("pyarrow.parquet")
    model, meta = load_model(model_file)
    spec = SourceSpec(str(lesion_npz), "test", (1, 24, 24))
    run_audit(model, spec, tmp_path, fast_settings(), meta=meta, limit=8)
    analysis = analyse(tmp_path)
    header = (tmp_path / "cases.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["case", "label", "predicted", "probability"]
    assert "gradcam.deletion_auc" in header and "smoothgrad.insertion_auc" in header
    table = pa.read_table(tmp_path / "cases.parquet")
    assert table.num_rows == 8 and "smoothgrad.summary" in table.column_names
    assert table.column("case").to_pylist() == [str(i) for i in range(8)]
    clusters = (tmp_path / "clusters.csv").read_text().splitlines()
    assert clusters[0] == "case,class,cluster,flagged,class_name" and len(clusters) == 9
    assert {line.split(",")[3] for line in clusters[1:]} <= {"0", "1"}
    assert len(analysis.results) == 8


def test_the_store_lock_names_the_command_that_holds_it(tmp_path):
    from medlens.audit.store import locked
    from medlens.errors import InputError

    with locked(tmp_path, "predict"):
        with pytest.raises(InputError, match="another predict is writing to"):
            with locked(tmp_path, "predict"):
                pass
