"""Third-party warnings on the command line: silenced while a command runs, shown with ``--debug``."""

from __future__ import annotations

import contextlib
import warnings

__all__ = ["LIBRARIES", "quiet_libraries"]

#: Libraries whose warnings are noise on a command line: what matters reaches the user as medlens'
#: own one-line messages (a bad DICOM value as the reader's error, not as pydicom's warning in front of it).
LIBRARIES = r"(pydicom|wfdb|pyedflib|nibabel|pandas|PIL|highdicom|monai|torch|numpy|scipy|sklearn)(\.|$)"


@contextlib.contextmanager
def quiet_libraries(debug: bool):
    """Silence third-party warnings while a command runs (all shown with ``--debug``)."""
    if debug:
        yield
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", module=LIBRARIES)
        yield
