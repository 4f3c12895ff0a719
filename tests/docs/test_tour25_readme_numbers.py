"""The root README's typed numbers (sentences, not generated blocks) equal the stored results they cite.

A new user following the README found its Speed paragraph quoting an older run of
``benchmarks/attribution.py`` (3.14x, 532 MiB, 7135 MiB, 18.89x) while
``benchmarks/results/attribution.json`` and the generated table in ``benchmarks/README.md`` said
3.60x, 488 MiB, 7061 MiB and 19.01x.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())


def _row(model: str, method: str) -> dict:
    payload = json.loads((ROOT / "benchmarks" / "results" / "attribution.json").read_text(encoding="utf-8"))
    return next(r for result in payload["numbers"]["results"] for r in result["rows"]
                if r["model"].startswith(model) and r["method"] == method)


def test_the_speed_paragraph_quotes_the_stored_attribution_run():
    m = re.search(r"integrated gradients \(50 steps\) ran ([\d.]+)x faster than Captum's defaults at (\d+) MiB peak "
                  r"\(Captum: (\d+) MiB\) and occlusion ([\d.]+)x faster", README)
    assert m, "the README's Speed sentence changed: update this test with it"
    ig, occlusion = _row("3D CNN", "integrated_gradients"), _row("3D CNN", "occlusion")
    assert m.groups() == (f"{ig['speedup_vs_captum_default']:.2f}", f"{ig['medlens_peak_mib']:.0f}",
                          f"{ig['captum_default_peak_mib']:.0f}", f"{occlusion['speedup_vs_captum_default']:.2f}")
