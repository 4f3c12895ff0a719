"""``medlens report`` end to end: real DICOM files with every identifying tag set, volumes,
signals, the evaluation link and the errors."""

from __future__ import annotations

import json
import re

import pytest
import torch

from medlens.cli import main
from medlens.evaluation.leaderboard import LeaderboardSettings, evaluate
from tests.conftest import make_input, make_model
from tests.data.identified_dicom import HOSTILE_NAME


def _visible(values: dict[str, str]) -> list[str]:
    """Identifying values long enough not to occur in a page by chance."""
    return [v for v in values.values() if len(v) >= 6]


def test_no_identifier_reaches_the_html_by_default(reports):
    for name, values in (("2d", reports["values"]), ("3d", reports["series_values"])):
        page = reports[name].read_text(encoding="utf-8")
        leaked = [v for v in _visible(values) if v in page or v.replace("^", " ") in page]
        assert not leaked, (name, leaked)
        assert "Doe" not in page and "onerror" not in page
        assert "1.2.826.0.1.3680043" not in page  # every UID, including the file and folder names
        assert "Withheld to protect the patient" in page and "PatientName" in page and "StudyInstanceUID" in page
        assert "file name" in page  # the UID file name is named as withheld
        case = json.loads((reports[name].parent / "case.json").read_text())
        assert "PatientName" in case["identifiers_withheld"]
        assert not any(v in json.dumps(case) for v in _visible(values))


def test_identifiers_shown_on_request_are_escaped(reports):
    page = reports["2d-shown"].read_text(encoding="utf-8")
    assert "&lt;img src=x onerror=alert(1)&gt;^Doe" in page and HOSTILE_NAME not in page
    assert reports["values"]["InstitutionName"] in page and reports["values"]["DeviceSerialNumber"] in page


def test_reports_are_self_contained_and_hold_the_case(reports):
    for name in ("2d", "3d", "signal"):
        page = reports[name].read_text(encoding="utf-8")
        assert not re.search(r'(src|href|action)\s*=\s*["\']?(https?:)?//', page), name
        assert "default-src 'none'" in page and f'data-kind="{ {"2d": "image", "3d": "volume", "signal": "signal"}[name] }"' in page
    vol = reports["3d"].read_text(encoding="utf-8")
    assert 'data-plane="0" min="0" max="15"' in vol  # native 16 slices, not the model's 12
    assert "CT" in vol and "Input read as" in vol


def test_evaluation_of_another_model_is_refused_naming_both(reports, tmp_path, capsys):
    other = make_model(2, num_classes=2, seed=9)
    x = make_input(2, batch=2, seed=4)
    settings = LeaderboardSettings(methods=["gradient"], metrics=["deletion_auc"], baselines=("random",),
                                   batch_size=2, metric_options={"deletion_auc": {"steps": 4}})
    evaluate(other, x, torch.tensor([0, 1]), out=tmp_path / "ev", settings=settings, progress=False)
    out = tmp_path / "r"
    code = main(["report", "--model", str(reports["models"][2]), "--input", str(reports["dicom"]),
                 "--methods", "gradient", "--evaluation", str(tmp_path / "ev"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and "another model" in err and "m2.pt" in err and err.count("fingerprint") == 2
    assert len(err.strip().splitlines()) == 1 and not out.exists()


def test_evaluation_of_this_model_is_used(reports, tmp_path):
    from medlens.models import load_model

    model, _ = load_model(reports["models"][2])
    x = make_input(2, batch=2, seed=4)
    settings = LeaderboardSettings(methods=["gradient"], metrics=["deletion_auc"], baselines=("random",),
                                   batch_size=2, metric_options={"deletion_auc": {"steps": 4}})
    evaluate(model, x, torch.tensor([0, 1]), out=tmp_path / "ev", settings=settings, progress=False)
    out = tmp_path / "r"
    assert main(["report", "--model", str(reports["models"][2]), "--input", str(reports["dicom"]), "--quiet",
                 "--methods", "gradient", "--evaluation", str(tmp_path / "ev"), "--out", str(out)]) == 0
    case = json.loads((out / "case.json").read_text())
    assert case["trust"]["source"] == "evaluation" and "Evaluated on 2 cases" in case["trust"]["headline"]


@pytest.mark.parametrize("args, message", [
    (["--methods", "nope"], "unknown"),
    (["--limit", "0"], "--limit"),
    (["--limit", "2"], "needs an npz data set"),
    (["--option", "gradient"], "NAME=VALUE"),
    (["--methods", "gradient", "--option", "n_steps=4"], "has an option 'n_steps'"),
    (["--option", "gradient.nope=1"], "nope"),
    (["--evaluation", "/nonexistent/ev"], "does not exist"),
    (["--basis-data", "ecg5000"], "basis data 'ecg5000' have cases of shape"),
])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(reports, tmp_path, capsys, args, message):
    out = tmp_path / "r"
    code = main(["report", "--model", str(reports["models"][2]), "--input", str(reports["dicom"]), *args,
                 "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


def test_unscoped_option_reaches_every_method_that_has_it(reports, tmp_path):
    out = tmp_path / "r"
    assert main(["report", "--model", str(reports["models"][2]), "--input", str(reports["dicom"]), "--quiet",
                 "--methods", "gradient,integrated_gradients", "--option", "abs=True",
                 "--option", "integrated_gradients.n_steps=4", "--out", str(out)]) == 0
    assert json.loads((out / "case.json").read_text())["methods"] == ["gradient", "integrated_gradients"]


def test_help_has_examples(capsys):
    assert main(["report", "--help"]) == 0
    text = capsys.readouterr().out
    assert "examples:" in text and "--show-identifiers" in text and "--limit" in text and "--memory-mb" in text


def test_dicom_window_is_used_for_display():
    from medlens.app.report_case import dicom_window as _dicom_window

    assert _dicom_window({"WindowCenter": "40\\400", "WindowWidth": "400\\2000"}) == (-160.0, 240.0)
    assert _dicom_window({"WindowCenter": "40", "WindowWidth": "0"}) is None
    assert _dicom_window({"WindowCenter": "soft"}) is None and _dicom_window({}) is None


def test_limit_writes_one_report_per_case(reports, tmp_path):
    import numpy as np

    npz = tmp_path / "cases.npz"
    gen = np.random.default_rng(0)
    np.savez(npz, test_images=gen.integers(0, 255, (3, 24, 24), dtype=np.uint8), test_labels=np.array([[0], [1], [1]]))
    out = tmp_path / "r"
    assert main(["report", "--model", str(reports["models"][2]), "--input", str(npz), "--index", "1", "--limit", "2",
                 "--methods", "gradient", "--quiet", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["case-1", "case-2"]
    page = (out / "case-2" / "report.html").read_text()
    assert "Recorded label of this case: finding." in page
