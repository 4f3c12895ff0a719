"""Kept for the commands' import path: the imaging systems now live in :mod:`medlens.app.systems`
(one module per system, one registry). ``medlens imaging-report`` and ``medlens demo --systems``
import :func:`write_imaging_report` from here; point them at :mod:`medlens.app.systems` and this
module can go.
"""

from medlens.app.systems.reports import run_systems, write_imaging_report

__all__ = ["run_systems", "write_imaging_report"]
