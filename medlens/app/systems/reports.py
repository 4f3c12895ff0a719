"""The systems reports: ``medlens systems`` (DeepTune, SciNet, GroupINN) and
``medlens imaging-report`` / ``medlens demo --systems`` (haemorrhage, attention gates, patch
attention). Each system runs through the registry's one runner shape; the sections are drawn by
:mod:`medlens.report.systems` and :mod:`medlens.report.imaging_systems`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from medlens.app.systems.base import SystemConfig
from medlens.app.systems.registry import IMAGING_SYSTEMS, SYSTEMS, get_system
from medlens.core.progress import SILENT, Progress, as_progress

__all__ = ["run_systems", "systems_report", "write_imaging_report"]


def systems_report(out: str, *, quick: bool = False, seed: int = 0, systems: Sequence[str] = SYSTEMS,
                   progress: bool | Progress = True) -> tuple[Any, dict[str, Any]]:
    """Run the representation systems and write their report (one HTML file).

    Returns
    -------
    (path, results)
        The written report and the result of each system by name.
    """
    from medlens.core.threads import torch_threads
    from medlens.report.html import Report
    from medlens.report.systems import (
        deeptune_section,
        groupinn_section,
        scinet_section,
    )

    for name in sorted(set(systems)):
        get_system(name, "representation")  # an unknown name fails here, listing the known ones
    if not isinstance(progress, Progress):  # the timing lines went to stdout, as they always have
        progress = Progress(quiet=not progress, stream=sys.stdout)
    config = SystemConfig(seed=seed, quick=quick)
    sections = {"deeptune": deeptune_section, "scinet": scinet_section, "groupinn": groupinn_section}
    report = Report("medlens: representation systems",
                    "DeepTune, SciNet and GroupINN on simulated ground truth" + (" (quick run)" if quick else ""))
    results: dict[str, Any] = {}
    with torch_threads(1):  # small models: one thread is fastest on shared cores
        for name in SYSTEMS:
            if name not in systems:
                continue
            start = time.perf_counter()
            results[name] = get_system(name).run(config, progress)
            sections[name](report, results[name])
            progress(f"{name}: {time.perf_counter() - start:.0f} s")
    return report.write(out), results


def run_systems(
    which: Any = IMAGING_SYSTEMS,
    *,
    quick: bool = False,
    seed: int = 0,
    progress: Progress = SILENT,
) -> tuple[dict[str, dict[str, Any]], dict[str, list[tuple[bytes, str]]]]:
    """Run the named systems; return their numbers (plain data) and pictures, keyed by system."""
    config = SystemConfig(seed=seed, quick=quick)
    numbers: dict[str, dict[str, Any]] = {}
    pictures: dict[str, list[tuple[bytes, str]]] = {}
    for name in which:
        res = get_system(name).run(config, progress)
        numbers[name], pictures[name] = res.as_dict(), list(res.images)
    return numbers, pictures


def write_imaging_report(
    out: Any,
    *,
    which: Any = IMAGING_SYSTEMS,
    quick: bool = False,
    seed: int = 0,
    results: dict[str, dict[str, Any]] | None = None,
    log: Progress | Callable[[str], Any] | None = None,
) -> Any:
    """Run the named systems (or take ``results`` a benchmark wrote) and write ``out/report.html``
    and ``out/results.json``; return the report's path. ``medlens imaging-report`` and
    ``medlens demo --systems`` both come here. ``log``: a :class:`Progress`, or a callable that
    takes each progress line (``print``), or ``None`` (silent).

    ``results.json`` is strict JSON: a number that could not be measured (NaN) is written as
    ``null``, which the report reads as "not measured" too.
    """
    from medlens.core.files import write_json
    from medlens.report.imaging_systems import imaging_systems_report

    images: dict[str, list[tuple[bytes, str]]] = {}
    if results is None:
        results, images = run_systems(which, quick=quick, seed=seed, progress=as_progress(log))
    out = Path(out)
    path = imaging_systems_report(results, images).write(out / "report.html")
    write_json(out / "results.json", results, indent=1)
    return path
