"""What every stored benchmark result carries: the commit, the command, threads and the machine's load."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import time
from typing import Any


def provenance(threads: int, **extra: Any) -> dict[str, Any]:
    """The commit (``+dirty`` with uncommitted changes), the command line, torch threads, the
    1/5/15-minute load averages and CPU count at the start, and the UTC time."""
    root = pathlib.Path(__file__).resolve().parent.parent
    git = lambda *a: subprocess.run(["git", *a], capture_output=True, text=True, cwd=root).stdout.strip()  # noqa: E731
    commit = git("rev-parse", "HEAD") + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")
    import medlens

    return {"commit": commit, "medlens_from": str(pathlib.Path(medlens.__file__).parent), "command": " ".join([pathlib.Path(sys.executable).name] + sys.argv),
            "threads": threads, "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "cpus": os.cpu_count(),
            "load_at_start": [round(v, 2) for v in os.getloadavg()],
            "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}


def load_now() -> list[float]:
    """The 1/5/15-minute load averages now (stored with each timed row: timings under load are not quiet timings)."""
    return [round(v, 2) for v in os.getloadavg()]
