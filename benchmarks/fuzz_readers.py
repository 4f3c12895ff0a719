"""Fuzz every reader with mutated files: truncations, bit flips and header fields at their extremes.

Each format starts from a valid file written by its reference library (Pillow, tifffile,
pydicom, nibabel, pyedflib, wfdb, numpy; ``tests/data/hostile_files.py``); a seeded loop draws
``--examples`` mutations per format (``tests/data/fuzzing.py``: the same mutations the
hypothesis tests draw) and reads each with :func:`medlens.data.formats.read.read`. The property:
a MedlensError of one line, or a valid record (finite float32 array, consistent shape). Any other
exception, or a violation, counts as a traceback (must be 0). Peak memory is the process's
maximum RSS (``resource.getrusage``), measured before and after the run.

Also measured, each in a fresh subprocess: the acceptance files of issue 21 (a ~5 KB PNG
declaring 100000 x 100000 pixels, a deflated DICOM of 65535 x 65535 zeros) refused in one line,
with their peak RSS; and a folder holding both bombs and a good picture, walked and read through
the case workflow (:func:`medlens.data.cases.open_cases`, as every command reads a folder): the
picture read, the bombs listed, and the peak RSS of the whole walk (grouping DICOM files by
series reads headers too).

    OMP_NUM_THREADS=1 python benchmarks/fuzz_readers.py --examples 500 --seed 0

Writes ``benchmarks/results/fuzz_readers.json``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import pathlib
import random
import resource
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import warnings

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _acceptance(tmp: pathlib.Path) -> dict:
    from tests.data import hostile_files as H

    made = {}
    t = time.perf_counter()
    png = H.png_bomb(tmp / "bomb.png")
    made["png"] = (png, time.perf_counter() - t)
    t = time.perf_counter()
    dcm = H.deflated_dicom_bomb(tmp / "bomb.dcm", 65535, 65535, level=1)
    made["deflated_dicom"] = (dcm, time.perf_counter() - t)
    out = {}
    script = textwrap.dedent(
        """
        import json, resource, sys, time
        from medlens.data.formats.read import read
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        t = time.perf_counter()
        try:
            read(sys.argv[1]); kind, msg = "read", ""
        except Exception as exc:
            kind, msg = type(exc).__name__, str(exc)
        print(json.dumps({"kind": kind, "message": msg, "seconds": time.perf_counter() - t,
                          "rss_after_imports_mb": base,
                          "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        """
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("MEDLENS_MEMORY_MB", None)
    for name, (path, made_s) in made.items():
        done = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True,
                              cwd=ROOT, env=env, timeout=600)
        row = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {
            "kind": "crashed", "message": done.stderr[-500:]}
        row.update({"file_bytes": path.stat().st_size, "made_in_s": round(made_s, 2),
                    "one_line": "\n" not in row.get("message", "x")})
        out[name] = row
    out["folder"] = _folder_acceptance(tmp, [png, dcm], env)
    return out


def _folder_acceptance(tmp: pathlib.Path, bombs: list[pathlib.Path], env: dict) -> dict:
    """A folder of both bombs and one good picture through the case workflow, in a subprocess."""
    import shutil

    from tests.data import hostile_files as H

    folder = tmp / "folder"
    folder.mkdir()
    for path in bombs:
        shutil.move(str(path), folder / path.name)
    H.write_png(folder / "good.png", (64, 48))
    script = textwrap.dedent(
        """
        import json, resource, sys, time
        from medlens.data.cases import open_cases
        t = time.perf_counter()
        cases = open_cases(sys.argv[1], input_shape=(1, 24, 24))
        batch = cases.load(range(len(cases)))
        print(json.dumps({"cases": len(cases), "read": len(batch.indices), "errors": sorted(batch.failed.values()),
                          "seconds": time.perf_counter() - t,
                          "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
        """
    )
    done = subprocess.run([sys.executable, "-c", script, str(folder)], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=600)
    if done.returncode != 0:
        return {"kind": "crashed", "message": done.stderr[-500:], "file_bytes": 0}
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row.update({"kind": f"{row['read']} read, {len(row['errors'])} refused", "file_bytes": sum(
        p.stat().st_size for p in folder.iterdir()), "message": "; ".join(row["errors"]),
        "one_line": all("\n" not in e for e in row["errors"])})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=500, help="mutations per format")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-mb", type=float, default=4.0, help="memory budget given to read (sets the decoding limit)")
    parser.add_argument("--formats", default="all")
    parser.add_argument("--no-acceptance", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "fuzz_readers.json"))
    args = parser.parse_args()

    import logging

    logging.disable(logging.CRITICAL)  # tifffile and pyedflib log about the corrupt files
    warnings.simplefilter("ignore")
    from tests.data import fuzzing

    formats = fuzzing.FORMATS if args.formats == "all" else tuple(args.formats.split(","))
    for fmt in formats:
        fuzzing.valid_files(fmt)
    rss_before = _rss_mb()
    table = {}
    failures = []
    start = time.perf_counter()
    for fmt in formats:
        rng = random.Random(f"{args.seed}:{fmt}")
        kinds: collections.Counter[str] = collections.Counter()
        t = time.perf_counter()
        for i in range(args.examples):
            ops = fuzzing.random_ops(fmt, rng)
            try:
                kinds[fuzzing.check(fmt, ops, memory_mb=args.memory_mb)] += 1
            except Exception as exc:  # noqa: BLE001 - a traceback: what this benchmark counts
                kinds["traceback"] += 1
                failures.append({"format": fmt, "example": i, "ops": fuzzing.describe(ops),
                                 "error": f"{type(exc).__name__}: {exc}"[:400],
                                 "where": traceback.format_exc(limit=-3)[-800:]})
        table[fmt] = {"files": args.examples, "read": kinds.pop("read", 0), "tracebacks": kinds.pop("traceback", 0),
                      "errors": dict(sorted(kinds.items())), "seconds": round(time.perf_counter() - t, 1)}
        print(f"{fmt:15s} {table[fmt]}", flush=True)
    elapsed = time.perf_counter() - start
    peak = _rss_mb()
    acceptance = {} if args.no_acceptance else _acceptance(pathlib.Path(tempfile.mkdtemp()))
    for name, row in acceptance.items():
        print(f"{name:15s} {row['kind']} {row['file_bytes']} bytes, peak RSS {row.get('peak_rss_mb', 0):.0f} MB: "
              f"{row['message'][:160]}")
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                                    text=True, cwd=ROOT).stdout.strip())
    except OSError:
        commit, dirty = "", False
    result = {
        "benchmark": "fuzz_readers",
        "git_commit": commit + ("-dirty" if dirty else ""),
        "command": "OMP_NUM_THREADS=1 python " + " ".join(["benchmarks/fuzz_readers.py", *sys.argv[1:]]),
        "seed": args.seed,
        "threads": int(os.environ.get("OMP_NUM_THREADS", "0") or 0),
        "examples_per_format": args.examples,
        "memory_mb": args.memory_mb,
        "seconds": round(elapsed, 1),
        "formats": table,
        "files_tried": sum(r["files"] for r in table.values()),
        "tracebacks": sum(r["tracebacks"] for r in table.values()),
        "peak_rss_mb": {"before_fuzzing": round(rss_before, 1), "after_fuzzing": round(peak, 1)},
        "acceptance": acceptance,
        "failures": failures[:50],
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['files_tried']} files, {result['tracebacks']} tracebacks, peak RSS {peak:.0f} MB, "
          f"{elapsed:.0f} s -> {out}")


if __name__ == "__main__":
    main()
