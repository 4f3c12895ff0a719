"""What the benchmark scripts share: the one way a result is stored, with its provenance, the
options every script takes, and the timed log.

Every acceptance benchmark stores its numbers through :func:`write_result`, which wraps them as

    {"benchmark": NAME, "provenance": {commit, dirty, command, seed, threads, load, ...}, "numbers": {...}}

under ``benchmarks/results/`` (git-ignored: stored results are committed with ``git add -f``).
``benchmarks/readme_tables.py`` builds the README's tables from these files, and the slow test
``tests/report/test_benchmark_results.py`` re-runs each quick configuration against its file.
Importing this module puts this checkout first on ``sys.path``, so a script measures the medlens
beside it, not an installed one (``provenance()["medlens_from"]`` says which it was).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # this checkout's medlens, not an installed one


def _git(*args: str) -> str:
    try:
        done = subprocess.run(["git", *args], check=False, cwd=ROOT, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def busy_loop() -> None:
    """One core's worth of other work, for ``--load N``: a single-threaded matrix product, over and over
    (the target of a spawned process; it never returns)."""
    import torch

    torch.set_num_threads(1)
    a = torch.randn(512, 512)
    while True:
        a = torch.tanh(a @ a)


def load_now() -> list[float]:
    """The 1/5/15-minute load averages now (stored with each timed row: timings taken while others
    share the machine are not quiet-machine timings)."""
    return [round(v, 2) for v in os.getloadavg()]


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), None)
    except OSError:
        return None


#: CPU features that decide which kernels torch and oneDNN run, and so the rounding of every
#: product: a model trained on a machine with AVX-512 ends elsewhere than one trained with AVX2.
ISA_FLAGS = ("avx", "avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile")


def cpu_isa() -> str:
    """What decides the arithmetic's rounding on this machine: torch's CPU capability and the
    instruction-set flags of :data:`ISA_FLAGS` the CPU has, e.g. ``"AVX2: avx avx2 fma"``."""
    import torch

    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = set(next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), []))
    except OSError:
        flags = set()
    return f"{torch.backends.cpu.get_cpu_capability()}: " + " ".join(f for f in ISA_FLAGS if f in flags)


def provenance(*, seed: int | None, config: Mapping[str, Any] | None = None) -> dict:
    """Where a result comes from: the commit (and whether the tree had uncommitted changes
    outside ``benchmarks/results``), the command, the seed, the options, the threads, where
    medlens was imported from, the machine and its load averages as the run starts."""
    import torch

    import medlens

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
                    "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY"),
                    "GOMP_SPINCOUNT": os.environ.get("GOMP_SPINCOUNT"), "cpu_count": os.cpu_count()},
        "medlens_from": str(Path(medlens.__file__).resolve().parent),
        "load_at_start": load_now(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": platform.machine(),
        "cpu": _cpu_model(),
        "cpu_isa": cpu_isa(),
        "written": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def result_path(name: str) -> Path:
    """``benchmarks/results/NAME.json``."""
    return RESULTS / f"{name}.json"


def write_result(name: str, numbers: Any, *, seed: int | None, config: Mapping[str, Any] | None = None,
                 path: str | os.PathLike | None = None, origin: dict | None = None) -> Path:
    """Store ``numbers`` with their provenance as ``benchmarks/results/NAME.json`` (or ``path``),
    atomically and as strict JSON (NaN written as null); returns the path. ``origin``: the
    :func:`provenance` taken when the run started (the code that ran), else taken now. A long
    run may call this after each row with the same ``origin``: a killed run keeps what it measured."""
    from medlens.core.files import write_json

    target = Path(path) if path else result_path(name)
    origin = origin or provenance(seed=seed, config=config)
    return write_json(target, {"benchmark": name, "provenance": origin, "numbers": numbers})


def read_result(name: str) -> dict:
    """A stored result (``{"benchmark", "provenance", "numbers"}``)."""
    return json.loads(result_path(name).read_text(encoding="utf-8"))


def options(parser: argparse.ArgumentParser, name: str, *, seed: int | None = 0, threads: int = 1) -> argparse.ArgumentParser:
    """The options every script takes: ``--out`` (default ``benchmarks/results/NAME.json``),
    ``--threads`` and, unless ``seed`` is None, ``--seed``."""
    parser.add_argument("--out", default=None, help=f"where to store the numbers (default benchmarks/results/{name}.json)")
    parser.add_argument("--threads", type=int, default=threads, help=f"torch threads (default {threads})")
    if seed is not None:
        parser.add_argument("--seed", type=int, default=seed)
    return parser


def quick_option(parser: argparse.ArgumentParser, quick: Mapping[str, Any]) -> argparse.ArgumentParser:
    """``--quick``: run the configuration ``quick`` (option name -> value; seconds to about a minute
    at one thread) that ``make check-benchmarks`` re-runs against ``results/NAME-quick.json``."""
    parser.add_argument("--quick", action="store_true",
                        help=f"the quick configuration {dict(quick)} (re-run by make check-benchmarks against its stored file)")
    return parser


def quick_name(args: argparse.Namespace, name: str, quick: Mapping[str, Any]) -> str:
    """The result's name: ``NAME-quick`` with ``quick`` applied to ``args`` when ``--quick`` was given, else ``NAME``."""
    if getattr(args, "quick", False):
        vars(args).update(quick)
        return f"{name}-quick"
    return name


def timed_log() -> Callable[[str], None]:
    """A ``log(message)`` that prints each message with the seconds since it was made."""
    t0 = time.perf_counter()
    return lambda m: print(f"[{time.perf_counter() - t0:6.0f} s] {m}", flush=True)


def run_and_report(run: Callable[[Callable[[str], None]], Any], out: str | None, *, name: str | None = None,
                   seed: int | None = None, config: Mapping[str, Any] | None = None, echo: bool = True) -> int:
    """Call ``run(log)``, print its result (a dict, or an object with ``as_dict()``) as JSON when
    ``echo``, store it (:func:`write_result` under ``name``, at ``out`` when given), print the time.

    ``log`` prints each message with the seconds since the start.
    """
    origin = provenance(seed=seed, config=config)  # the tree as the run starts
    t0 = time.perf_counter()
    result = run(timed_log())
    result = result.as_dict() if hasattr(result, "as_dict") else result
    if echo:
        print(json.dumps(result, indent=1, default=str))
    if name or out:
        written = write_result(name or Path(out).stem, result, seed=seed, config=config, path=out, origin=origin)
        print(f"stored {written}")
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0
