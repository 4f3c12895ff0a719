"""What the imaging-system acceptance scripts share: a timed log and the printed, saved result."""

from __future__ import annotations

import json
import time
from typing import Any, Callable


def run_and_report(run: Callable[[Callable[[str], None]], Any], out: str | None) -> int:
    """Call ``run(log)``, print its ``as_dict()`` as JSON, write it to ``out`` if given, print the time.

    ``log`` prints each message with the seconds since the start.
    """
    t0 = time.perf_counter()
    result = run(lambda m: print(f"[{time.perf_counter() - t0:6.0f} s] {m}", flush=True)).as_dict()
    print(json.dumps(result, indent=1))
    if out:
        with open(out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=1)
    print(f"total {time.perf_counter() - t0:.0f} s")
    return 0
