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
    OMP_NUM_THREADS=1 python benchmarks/fuzz_readers.py --quick     # -> results/fuzz_readers-quick.json

Stores ``benchmarks/results/fuzz_readers.json`` through ``_runner.write_result``. The quick
configuration (``QUICK``: 50 mutations per format, no bombs) is re-run by the slow test
``tests/report/test_benchmark_results.py``: the counts per format are exact for a seed.
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

from _runner import ROOT, options, provenance, write_result

#: The quick configuration (seconds): the slow test re-runs it against its stored file.
QUICK = {"examples": 50, "no_acceptance": True}


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
        done = subprocess.run([sys.executable, "-c", script, str(path)], check=False, capture_output=True, text=True,
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
    done = subprocess.run([sys.executable, "-c", script, str(folder)], check=False, capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=600)
    if done.returncode != 0:
        return {"kind": "crashed", "message": done.stderr[-500:], "file_bytes": 0}
    row = json.loads(done.stdout.strip().splitlines()[-1])
    row.update({"kind": f"{row['read']} read, {len(row['errors'])} refused", "file_bytes": sum(
        p.stat().st_size for p in folder.iterdir()), "message": "; ".join(row["errors"]),
        "one_line": all("\n" not in e for e in row["errors"])})
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    options(parser, "fuzz_readers")
    parser.add_argument("--examples", type=int, default=500, help="mutations per format")
    parser.add_argument("--memory-mb", type=float, default=4.0, help="memory budget given to read (sets the decoding limit)")
    parser.add_argument("--formats", default="all")
    parser.add_argument("--no-acceptance", action="store_true")
    parser.add_argument("--quick", action="store_true", help=f"the quick configuration {QUICK}")
    args = parser.parse_args()
    if args.quick:
        vars(args).update(QUICK)
    import torch

    torch.set_num_threads(args.threads)
    result_name = "fuzz_readers" + ("-quick" if args.quick else "")
    origin = provenance(seed=args.seed, config=vars(args))

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
    result = {
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
    out = write_result(result_name, result, seed=args.seed, config=vars(args), path=args.out, origin=origin)
    print(f"{result['files_tried']} files, {result['tracebacks']} tracebacks, peak RSS {peak:.0f} MB, "
          f"{elapsed:.0f} s -> {out}")


if __name__ == "__main__":
    main()
