"""medlens' own warnings on the command line are one line each, not Python's two.

Seen: ``medlens report`` on pydicom's dicomdirtests/77654033/CT2 (slices 1.25 mm apart and one
202.5 mm away) printed "/…/medlens/data/formats/common.py:49: UserWarning: DICOM series … has
irregular slice spacing …" and, under it, the source line "return reader(path, *args, **kwargs)".
"""

from __future__ import annotations

import warnings

import pytest

from medlens.app.library_warnings import one_line_warnings

pydicom = pytest.importorskip("pydicom")


def test_a_warning_is_one_line_and_debug_keeps_pythons_form(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        with one_line_warnings(debug=False):
            warnings.warn("irregular\nspacing", UserWarning, stacklevel=1)
        assert capsys.readouterr().err == "medlens: warning: irregular spacing\n"
        shown = warnings.showwarning
        with one_line_warnings(debug=True):
            assert warnings.showwarning is shown  # Python's form, file and line
        assert warnings.showwarning is shown


def test_explain_on_a_series_with_irregular_spacing_warns_in_one_line(tmp_path, capsys):
    import numpy as np
    import torch
    from pydicom.data import get_testdata_file

    from medlens.cli import main
    from medlens.data.recipe import Recipe
    from medlens.models.cnn import CNN
    from medlens.models.io import save_model

    series = tmp_path / "ct"
    series.mkdir()
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for k, z in enumerate((0.0, 1.0, 5.0)):
        ds.ImagePositionPatient = [0.0, 0.0, z]
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = f"1.2.826.0.1.3680043.9.7.{k + 1}"
        ds.PixelData = np.full((128, 128), 10 * k, dtype=np.int16).tobytes()
        ds.save_as(series / f"{k}.dcm")
    torch.manual_seed(0)
    save_model(CNN(3, 1, 2, widths=(4, 8), input_shape=(1, 4, 8, 8)), tmp_path / "vol.pt",
               {"input_shape": [1, 4, 8, 8], "class_names": ["a", "b"],
                "recipe": Recipe(normalize="minmax", channels=1, size=(4, 8, 8))})
    assert main(["explain", "--model", str(tmp_path / "vol.pt"), "--input", str(series), "--method", "gradient",
                 "--out", str(tmp_path / "out"), "--quiet"]) == 0
    said = capsys.readouterr()
    assert said.err == ""  # said once, as the result's warning (tour32), not also by the reader
    lines = [line for line in said.out.splitlines() if "spacing" in line]
    assert len(lines) == 1 and lines[0].startswith("warning (slice_geometry): The DICOM series has ")
    assert "irregular slice spacing (1.000 to 4.000 mm)" in lines[0]
