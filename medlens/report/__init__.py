"""Self-contained HTML reports a clinician can open in any browser.

:class:`Report` / :class:`Section` build pages; :func:`viewer_html` is the shared overlay viewer
(scan + maps, sliders, method switch) every report embeds; :mod:`medlens.report.case` builds the
case report.
"""

from medlens.report.html import Report, Section
from medlens.report.viewer import Annotation, MapLayer, viewer_html

__all__ = ["Annotation", "MapLayer", "Report", "Section", "viewer_html"]
