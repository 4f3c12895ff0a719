"""Self-contained HTML reports a clinician can open in any browser."""

from medlens.report.html import Report, Section

__all__ = ["Report", "Section"]
