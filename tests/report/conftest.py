"""Fixtures of the report tests: small saved models and case reports written by the CLI."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.cli import main
from medlens.models import save_model
from tests.conftest import make_model
from tests.data.identified_dicom import write_identified_dicom, write_identified_series


def _model_file(tmp, dims, name):
    model = make_model(dims, num_classes=2)
    shape = {1: [2, 64], 2: [1, 24, 24], 3: [1, 12, 12, 12]}[dims]
    return save_model(model, tmp / name, {"class_names": ["no finding", "finding"], "input_shape": shape,
                                          "data": f"synthetic {dims}D"})


@pytest.fixture(scope="session")
def reports(tmp_path_factory):
    """Case reports written by ``medlens report``: 2D DICOM (hidden and shown identifiers), a 3D
    DICOM series named by UIDs, and a two-lead signal."""
    tmp = tmp_path_factory.mktemp("case-reports")
    out = {}
    m2, m3, m1 = _model_file(tmp, 2, "m2.pt"), _model_file(tmp, 3, "m3.pt"), _model_file(tmp, 1, "m1.pt")
    dicom = tmp / "1.2.826.0.1.3680043.9.99.1.dcm"
    out["values"] = write_identified_dicom(dicom)
    series = tmp / "1.2.826.0.1.3680043.9.99.2"
    out["series_values"] = write_identified_series(series, slices=16, size=32)
    signal = tmp / "beat.npy"
    t = np.linspace(0, 4 * np.pi, 64)
    np.save(signal, np.stack([np.sin(t), np.cos(3 * t)]).astype(np.float32))
    runs = {
        "2d": ["--model", str(m2), "--input", str(dicom), "--methods", "gradient,gradcam"],
        "2d-shown": ["--model", str(m2), "--input", str(dicom), "--methods", "gradient", "--show-identifiers"],
        "3d": ["--model", str(m3), "--input", str(series), "--methods", "gradient,gradcam,integrated_gradients",
               "--option", "integrated_gradients.n_steps=8"],
        "signal": ["--model", str(m1), "--input", str(signal), "--methods", "gradient,occlusion"],
    }
    for name, args in runs.items():
        assert main(["report", *args, "--quiet", "--out", str(tmp / name)]) == 0, name
        out[name] = tmp / name / "report.html"
    out["dir"] = tmp
    out["models"] = {1: m1, 2: m2, 3: m3}
    out["dicom"], out["series"] = dicom, series
    return out
