"""One record of a folder that cannot be read (MIT-BIH's ``1003.hea`` without its ``1003.dat``) or cut (a
record without the model's leads) refused ``predict`` on every other record of the folder, where an
unreadable scan is listed and the rest predicted. The windows a model's cases are cut into now leave
such a record out and count it with the first reason; training still refuses the folder."""

from __future__ import annotations

import numpy as np
import pytest

from medlens.data.record_cases import RecordCases, model_windows
from medlens.data.records import windows_from_folder
from medlens.errors import MedlensError

wfdb = pytest.importorskip("wfdb")

META = {"class_names": ["normal", "ventricular"],
        "windows": {"fs": 250.0, "before": 0.2, "after": 0.3, "leads": ["MLII", "V5"], "normalize": "none",
                    "kind": "beats", "annotation_labels": {"N": "normal", "V": "ventricular"}, "step": None},
        "recipe": {"units": ["mV", "mV"]}}


def _folder(tmp_path):
    t = np.arange(250 * 4) / 250
    signal = np.stack([np.sin(2 * np.pi * 1.1 * t), np.cos(2 * np.pi * 1.1 * t)], 1)
    wfdb.wrsamp("good", fs=250, units=["mV", "mV"], sig_name=["MLII", "V5"], p_signal=signal, fmt=["16", "16"],
                write_dir=str(tmp_path))
    wfdb.wrann("good", "atr", np.array([250, 500, 750]), np.array(["N", "V", "N"]), write_dir=str(tmp_path))
    (tmp_path / "lost.hea").write_text("lost 1 250 1000\nlost.dat 16 200/mV 16 0 0 0 0 MLII\n")  # no lost.dat
    return tmp_path


def test_predicting_leaves_an_unreadable_record_out_and_counts_it(tmp_path):
    cases = RecordCases(_folder(tmp_path), model_windows(META))
    assert len(cases) == 3
    assert "1 (records that could not be read or cut, the first: WFDB record lost: lost.dat named by lost.hea " \
           "is missing)" in cases.skipped


def test_training_still_refuses_the_folder(tmp_path):
    with pytest.raises(MedlensError, match="lost.dat named by lost.hea is missing"):
        windows_from_folder(_folder(tmp_path), windows="beats", annotation_labels="N:normal,V:ventricular")


def test_evaluate_says_what_was_left_out(tmp_path):
    """evaluate scored the windows of the readable records and said nothing of the one left out."""
    from medlens.app.evaluate import evaluate_methods
    from medlens.models import CNN, save_model

    model = save_model(CNN(1, 2, 2, widths=(4,), input_shape=(2, 125)).eval(), tmp_path / "m.pt",
                       {**META, "input_shape": [2, 125]})
    (tmp_path / "records").mkdir()
    result = evaluate_methods(model=str(model), data=str(_folder(tmp_path / "records")), methods="gradient",
                              metrics="deletion_auc", out=str(tmp_path / "eval"), quiet=True)
    assert any("records that could not be read or cut, the first: WFDB record lost" in n for n in result.notes)
