"""Warnings on the command line: third-party ones silenced while a command runs, medlens' own on
one line (``medlens: warning: ...``, not Python's file, line and source line); both as Python
shows them with ``--debug``."""

from __future__ import annotations

import contextlib
import sys
import warnings

__all__ = ["LIBRARIES", "one_line_warnings", "quiet_libraries"]

#: Libraries whose warnings are noise on a command line: what matters reaches the user as medlens'
#: own one-line messages (a bad DICOM value as the reader's error, not as pydicom's warning in front of it).
LIBRARIES = r"(pydicom|wfdb|pyedflib|nibabel|pandas|PIL|highdicom|monai|torch|numpy|scipy|sklearn)(\.|$)"


#: matplotlib's warning for a character its font cannot draw (drawn as a box in the picture).
MISSING_GLYPH = r"Glyph \d+ .* missing from font"


@contextlib.contextmanager
def quiet_libraries(debug: bool):
    """Silence third-party warnings while a command runs (all shown with ``--debug``)."""
    if debug:
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=LIBRARIES)
        # matplotlib attributes a missing glyph (a note's CJK word in note.png) to its caller
        warnings.filterwarnings("ignore", message=MISSING_GLYPH)
        yield


@contextlib.contextmanager
def one_line_warnings(debug: bool):
    """Show each warning as one line on stderr, ``medlens: warning: MESSAGE`` (Python's form,
    with its file and source line, with ``debug``)."""
    if debug:
        yield
        return
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001 - warnings' signature
        print(f"medlens: warning: {' '.join(str(message).split())}", file=sys.stderr)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown
