"""Third-party warnings do not land in front of medlens' one-line messages (shown with --debug)."""

from __future__ import annotations

import warnings

from medlens.app.library_warnings import quiet_libraries


def _warn(module: str) -> None:
    warnings.warn_explicit("Invalid value for VR IS: '1A'", UserWarning, "valuerep.py", 440, module=module,
                           registry={})


def test_library_warnings_are_silenced_and_medlens_own_are_not():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_libraries(debug=False):
            _warn("pydicom.valuerep")
            _warn("wfdb.io.annotation")
            _warn("medlens.data.formats.dicom")
    assert [str(w.message) for w in seen] == ["Invalid value for VR IS: '1A'"]  # medlens' own only


def test_debug_shows_them():
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with quiet_libraries(debug=True):
            _warn("pydicom.valuerep")
    assert len(seen) == 1
