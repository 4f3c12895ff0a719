"""``predict``, ``evaluate``, ``audit`` and ``attention`` cut a records model's windows without the units the
model was trained in: MIT-BIH 100 rewritten in uV reached a model trained in mV 1000 times too large (only
``explain``, through the recipe, converted it). The windows now take each lead's unit from the model file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlens.data.record_cases import RecordCases, model_windows
from medlens.errors import InputError

wfdb = pytest.importorskip("wfdb")

META = {"class_names": ["normal", "ventricular"],
        "windows": {"fs": 250.0, "before": 0.2, "after": 0.3, "leads": ["MLII", "V5"], "normalize": "none",
                    "kind": "beats", "annotation_labels": {"N": "normal", "V": "ventricular"}, "step": None},
        "recipe": {"fs": 250.0, "leads": ["MLII", "V5"], "units": ["mV", "mV"], "size": [125]}}


def _record(folder, scale, units):
    folder.mkdir()
    t = np.arange(250 * 4) / 250
    mv = np.stack([np.sin(2 * np.pi * 1.1 * t), 0.5 * np.cos(2 * np.pi * 1.1 * t)], 1)
    wfdb.wrsamp("rec", fs=250, units=units, sig_name=["MLII", "V5"], p_signal=mv * scale, fmt=["16", "16"],
                adc_gain=[1000.0 / scale] * 2, baseline=[0, 0], write_dir=str(folder))
    wfdb.wrann("rec", "atr", np.array([250, 500, 750]), np.array(["N", "V", "N"]), write_dir=str(folder))


def test_a_record_in_microvolts_is_cut_in_the_models_millivolts(tmp_path):
    _record(tmp_path / "mv", 1.0, ["mV", "mV"])
    _record(tmp_path / "uv", 1000.0, ["uV", "uV"])
    settings = model_windows(META)
    in_mv = RecordCases(tmp_path / "mv", settings).windows.inputs
    in_uv = RecordCases(tmp_path / "uv", settings).windows.inputs
    assert torch.allclose(in_uv, in_mv, atol=2e-3) and float(in_mv.abs().max()) > 0.4


def test_a_lead_of_another_kind_is_refused(tmp_path):
    _record(tmp_path / "p", 1.0, ["mmHg", "mmHg"])
    with pytest.raises(InputError, match="mmHg"):
        RecordCases(tmp_path / "p", model_windows(META))
