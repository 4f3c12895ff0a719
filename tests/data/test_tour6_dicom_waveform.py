"""A DICOM 12-lead ECG (a waveform object, no pixel data) is a signal record.

Seen on pydicom's waveform_ecg.dcm (12 leads, 10 s at 1000 Hz, and a median beat): "has no pixel
data (SOP class 1.2.840.10008.5.1.4.1.1.9.1.1)" for every model; hospitals store ECGs so.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")

from pydicom.data import get_testdata_file  # noqa: E402

from medlens.data.formats.read import read  # noqa: E402

ECG = get_testdata_file("waveform_ecg.dcm")


def test_the_rhythm_group_reads_in_physical_units_with_lead_names_and_identifiers_apart():
    ds = pydicom.dcmread(ECG)
    signal = read(ECG)
    assert signal.fs == 1000.0 and tuple(signal.values.shape) == (12, 10000)
    assert np.allclose(signal.values.numpy(), ds.waveform_array(0).T.astype(np.float32))
    assert signal.channels[:2] == ("Lead I (Einthoven)", "Lead II") and signal.units == ("uV",) * 12
    assert signal.metadata["MultiplexGroup"] == "RHYTHM" and signal.metadata["Modality"] == "ECG"
    assert signal.identifiers["PatientID"] == str(ds.PatientID)
    assert str(ds.PatientID) not in json.dumps(signal.metadata)


def test_a_lead_of_the_dicom_ecg_is_explained_in_mv_for_a_model_trained_in_mv(tmp_path):
    import torch

    from medlens.cli import main
    from medlens.data.recipe import Recipe
    from medlens.models.cnn import CNN
    from medlens.models.io import save_model

    torch.manual_seed(0)
    model = CNN(1, 1, 2, widths=(4, 8), input_shape=(1, 500))
    recipe = Recipe(normalize="none", channels=1, size=(500,), fs=500.0, leads=("Lead II",), units=("mV",))
    save_model(model, tmp_path / "ecg.pt", {"input_shape": [1, 500], "class_names": ["a", "b"], "recipe": recipe})
    out = tmp_path / "out"
    assert main(["explain", "--model", str(tmp_path / "ecg.pt"), "--input", ECG, "--start", "2", "--method", "gradient",
                 "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reading"]["sampling_rate"] == {"record_hz": 1000.0, "model_hz": 500.0, "resampled": True}
    assert "lead Lead II converted from uV to mV" in summary["preprocessing"]["notes"]
    attribution = np.load(out / "attribution.npy")
    assert attribution.shape[-1] == 10000 and np.abs(attribution).sum() > 0
    assert "642341" not in (out / "summary.json").read_text()  # the patient id stays out
