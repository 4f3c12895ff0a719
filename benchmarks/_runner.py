"""What the benchmark scripts share: the one way a result is stored, with its provenance, and the
timed log of the imaging-system acceptance scripts.

Every acceptance benchmark stores its numbers through :func:`write_result`, which wraps them as

    {"benchmark": NAME, "provenance": {commit, dirty, command, seed, threads, ...}, "numbers": {...}}

under ``benchmarks/results/`` (git-ignored: stored results are committed with ``git add -f``).
``benchmarks/readme_tables.py`` builds the README's tables from these files, and the slow test
``tests/report/test_benchmark_results.py`` re-runs each quick configuration against its file.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def provenance(*, seed: int | None, config: Mapping[str, Any] | None = None) -> dict:
    """Where a result comes from: the commit (and whether the tree had uncommitted changes
    outside ``benchmarks/results``), the command, the seed, the threads and the machine."""
    import torch

    dirty = [line for line in _git("status", "--porcelain").splitlines() if "benchmarks/results" not in line]
    script = Path(sys.argv[0])
    try:
        script = script.resolve().relative_to(ROOT)
    except ValueError:
        pass
    return {
        "commit": _git("rev-parse", "HEAD") or None,
        "dirty": bool(dirty),
        "command": " ".join(["python", str(script), *sys.argv[1:]]),
        "seed": seed,
        "config": dict(config or {}),
        "threads": {"torch": torch.get_num_threads(), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
                    "cpu_count": os.cpu_count()},
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "written": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def result_path(name: str) -> Path:
    """``benchmarks/results/NAME.json``."""
    return RESULTS / f"{name}.json"


def write_result(name: str, numbers: Any, *, seed: int | None, config: Mapping[str, Any] | None = None,
                 path: str | os.PathLike | None = None, origin: dict | None = None) -> Path:
    """Store ``numbers`` with their provenance as ``benchmarks/results/NAME.json`` (or ``path``),
    atomically and as strict JSON (NaN written as null); returns the path. ``origin``: the
    :func:`provenance` taken when the run started (the code that ran), else taken now."""
    from medlens.core.files import write_json

    target = Path(path) if path else result_path(name)
    origin = origin or provenance(seed=seed, config=config)
    return write_json(target, {"benchmark": name, "provenance": origin, "numbers": numbers})


def read_result(name: str) -> dict:
    """A stored result (``{"benchmark", "provenance", "numbers"}``)."""
    return json.loads(result_path(name).read_text(encoding="utf-8"))


def run_and_report(run: Callable[[Callable[[str], None]], Any], out: str | None, *, name: str | None = None,
                   seed: int | None = None, config: Mapping[str, Any] | None = None) -> int:
    """Call ``run(log)``, print its ``as_dict()`` as JSON, store it (:func:`write_result` under
    ``name``, at ``out`` when given), print the time.

    ``log`` prints each message with the seconds since the start.
    """
    origin = provenance(seed=seed, config=config)  # the tree as the run starts
    t0 = time.perf_counter()
    result = run(lambda m: print(f"[{time.perf_counter() - t0:6.0f} s] {m}", flush=True)).as_dict()
    print(json.dumps(result, indent=1, default=str))
    if name or out:
        written = write_result(name or Path(out).stem, result, seed=seed, config=config, path=out, origin=origin)
        print(f"stored {written}")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0
