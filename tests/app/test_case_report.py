"""The computing side of the case report: maps on the native grid, per-case trust checks with a
known answer, evaluation verdicts tied to their model, calibration, prediction basis, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from medlens.app.case_report import (
    CaseCheck,
    CaseInput,
    calibration_data,
    calibration_sentence,
    case_checks,
    case_report,
    trust_from_checks,
    trust_from_evaluation,
)
from medlens.errors import FileFormatError, InputError
from medlens.evaluation.leaderboard import LeaderboardSettings, evaluate, model_fingerprint
from tests.conftest import make_input, make_model


def test_calibration_closed_form():
    probs = torch.tensor([[0.05, 0.95], [0.08, 0.92], [0.9, 0.1], [0.35, 0.65], [0.45, 0.55]])
    labels = torch.tensor([1, 0, 0, 1, 0])
    cal = calibration_data(probs, labels, bins=5)
    # confidences 0.95, 0.92, 0.9 -> bin [0.8, 1.0]; 0.65 -> [0.6, 0.8); 0.55 -> [0.4, 0.6)
    assert cal["counts"] == [0, 0, 1, 1, 3]
    assert cal["accuracy"][4] == pytest.approx(2 / 3) and cal["accuracy"][3] == 1.0 and cal["accuracy"][2] == 0.0
    expected_ece = (3 / 5) * abs(2 / 3 - (0.95 + 0.92 + 0.9) / 3) + (1 / 5) * abs(1 - 0.65) + (1 / 5) * abs(0 - 0.55)
    assert cal["ece"] == pytest.approx(expected_ece)
    sentence, rows = calibration_sentence(cal, 0.93)
    assert sentence == "Of the 3 validation cases where the model was between 80% and 100% sure, it was right in 67%."
    assert rows[-1] == ("80% to 100%", "right in 67% of 3 cases") and len(rows) == 3
    assert calibration_sentence(cal, 0.1)[0].startswith("No validation case")
    unlike = calibration_sentence(cal, 0.93, like_training=False)[0]
    assert unlike.startswith("Of the 3 validation cases") and "this one is not" in unlike
    assert calibration_sentence(None, 0.5) == (None, [])


class RegionDetector(nn.Module):
    """Logit of class 1 = 0.5 * (sum of the input inside a 6x6 region) - 6: its gradient is the region."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(48 * 48, 2, bias=False).double()
        w = torch.zeros(2, 48, 48, dtype=torch.float64)
        w[1, 2:8, 3:9] = 0.5
        with torch.no_grad():
            self.linear.weight.copy_(w.reshape(2, -1))

    def forward(self, x):
        return self.linear(x.flatten(1)) + torch.tensor([0.0, -6.0], dtype=x.dtype)


def test_case_checks_known_answer_on_a_region_detector():
    model = RegionDetector().eval()
    x = torch.zeros(1, 1, 48, 48, dtype=torch.float64)
    x[0, 0, 3:7, 4:8] = 1.0  # a bright blob inside the region: strong class-1 evidence
    x[0, 0, 20:44, 20:44] = 2.0  # a large brighter one the model ignores: edge and centre maps go there first
    from medlens.attribution.explain import explain

    attr = explain(model, x, 1, "gradient").values
    checks = case_checks(model, x, 1, {"gradient": attr}, seed=0)
    (c,) = checks
    assert c.deletion_drop > 0.1  # blurring everything removes the evidence: the check can tell
    assert c.deletion_auc < c.random_auc.min()  # the true evidence map beats every random map
    assert c.randomisation_rho < 0.5  # a randomised linear layer has another gradient
    assert c.deletion_auc < min(c.edge_auc, c.centre_auc)  # better than the model-free maps
    trust = trust_from_checks(checks)
    assert trust.level == "supported" and trust.methods[0].level == "supported"
    assert "gradient" in trust.headline and trust.source == "case" and trust.best == "gradient"
    assert any("random maps" in what for what, _ in trust.methods[0].numbers)


def _check(**kw):
    base = dict(method="m", deletion_auc=0.2, random_auc=np.linspace(0.4, 0.6, 19), edge_auc=0.45,
                centre_auc=0.5, randomisation_rho=0.1, deletion_drop=0.8)
    base.update(kw)
    return CaseCheck(**base)


@pytest.mark.parametrize("kw, level, words", [
    ({}, "supported", "faster than blurring random areas"),
    ({"deletion_auc": 0.45}, "caution", "only a little faster"),
    ({"deletion_auc": 0.55}, "unsupported", "no faster than blurring random"),
    ({"randomisation_rho": 0.9}, "unsupported", "shows the image more than the model"),
    ({"edge_auc": 0.1}, "caution", "worse than an edge detector"),
    ({"deletion_drop": 0.02, "deletion_auc": 0.9}, "caution", "cannot be tested on this case"),
    # three random maps: the rank test's smallest p-value is 1/4, so beating them all is no evidence
    ({"random_auc": np.array([0.4, 0.5, 0.6])}, "caution", "the test cannot reach p <= 0.05"),
])
def test_per_case_verdict_words(kw, level, words):
    trust = trust_from_checks([_check(**kw)])
    assert trust.methods[0].level == level and words in trust.methods[0].sentence


def test_rank_test_p_value_is_stated_and_decides():
    beats_all = _check()
    assert beats_all.deletion_p == pytest.approx(1 / 20)
    one_below = _check(deletion_auc=0.41)  # one random map (0.40) scores lower
    assert one_below.deletion_p == pytest.approx(2 / 20)
    assert trust_from_checks([one_below]).methods[0].level == "caution"
    numbers = dict(trust_from_checks([beats_all]).methods[0].numbers)
    assert any(k.startswith("one-sided Monte-Carlo rank test") and v.startswith("0.050") for k, v in numbers.items())


def test_case_report_maps_on_the_native_grid():
    model = make_model(2, num_classes=3)
    x = make_input(2, batch=1)
    native = np.random.default_rng(0).random((48, 48))
    content, summary = case_report(
        model, x, case=CaseInput(native=native, description="test scan", identifiers={"PatientID": "X1"}),
        meta={"class_names": ["a", "b", "c"]}, methods=["gradient", "gradcam"],
    )
    assert [m.name for m in content.maps] == ["gradient", "gradcam"]
    assert all(m.values.shape == (48, 48) for m in content.maps)
    from medlens.attribution.explain import explain
    from medlens.core.resize import upsample_to

    direct = upsample_to(explain(model, x, content.explained, "gradcam").values.double(), (48, 48))[0].sum(0)
    np.testing.assert_allclose(content.maps[1].values, direct.numpy(), rtol=1e-6, atol=1e-9)
    assert content.predicted == int(model(x).argmax()) and math.isclose(sum(content.probabilities), 1.0, rel_tol=1e-9)
    assert content.identifiers is None and content.withheld == ["PatientID"]
    assert summary["identifiers_withheld"] == ["PatientID"] and summary["trust"]["source"] == "case"
    shown, _ = case_report(model, x, case=CaseInput(identifiers={"PatientID": "X1"}), methods=["gradient"],
                           show_identifiers=True)
    assert shown.identifiers == {"PatientID": "X1"}


def test_case_report_on_a_signal_and_a_volume():
    for dims in (1, 3):
        model, x = make_model(dims, num_classes=2), make_input(dims, batch=1)
        content, _ = case_report(model, x, methods=["gradient"])
        assert content.kind == {1: "signal", 3: "volume"}[dims]
        expected = x.shape[-1:] if dims == 1 else x.shape[2:]
        assert content.maps[0].values.shape == tuple(expected)


def test_errors():
    model, x = make_model(2, num_classes=2), make_input(2, batch=2)
    with pytest.raises(InputError, match="one case"):
        case_report(model, x)
    with pytest.raises(InputError, match="out of range"):
        case_report(model, x[:1], 5, methods=["gradient"])
    with pytest.raises(InputError, match="basis data have cases of shape"):
        case_report(model, x[:1], methods=["gradient"], basis_inputs=torch.zeros(4, 1, 12, 12),
                    basis_labels=torch.zeros(4, dtype=torch.long))
    with pytest.raises(InputError, match="options given for 'rise'"):
        case_report(model, x[:1], methods=["gradient"], method_options={"rise": {"n_masks": 10}})


def test_basis_shows_nearest_training_cases():
    model = make_model(2, num_classes=2)
    train = make_input(2, batch=10, seed=5)
    labels = torch.tensor([0, 1] * 5)
    query = train[3:4].clone()
    content, summary = case_report(model, query, methods=["gradient"], basis_inputs=train, basis_labels=labels, k=3,
                                   meta={"class_names": ["no", "yes"]})
    assert len(content.basis) == 3 and content.basis[0].index == 3  # the case itself is the nearest
    assert content.basis[0].similarity == pytest.approx(1.0)
    assert content.basis[0].saliency.shape == (1, 24, 24) and content.basis[0].label == "yes"
    assert "3 training cases" in content.basis_summary and summary["basis"][0]["train_index"] == 3


def test_trust_from_an_evaluation_of_this_model_and_refusal_of_another(tmp_path):
    model = make_model(2, num_classes=2)
    x = make_input(2, batch=4, seed=3)
    labels = torch.tensor([0, 1, 0, 1])
    settings = LeaderboardSettings(methods=["gradient"], metrics=["deletion_auc"], baselines=("random", "edge"),
                                   batch_size=4, metric_options={"deletion_auc": {"steps": 4}})
    evaluate(model, x, labels, out=tmp_path, settings=settings, progress=False)
    trust = trust_from_evaluation(model, tmp_path, ["gradient", "gradcam"], model_name="m.pt")
    assert trust.source == "evaluation" and "4 cases" in trust.headline
    assert [t.method for t in trust.methods] == ["gradient", "gradcam"]
    assert trust.methods[1].sentence == "This method was not part of the evaluation run."
    assert any("deletion_auc" in what for what, _ in trust.methods[0].numbers)
    other = make_model(2, num_classes=2, seed=7)
    with pytest.raises(InputError) as err:
        trust_from_evaluation(other, tmp_path, ["gradient"], model_name="other.pt")
    message = str(err.value)
    assert model_fingerprint(model) in message and model_fingerprint(other) in message and "other.pt" in message
    with pytest.raises(FileFormatError, match="no medlens evaluation"):
        trust_from_evaluation(model, tmp_path / "results.jsonl" if False else tmp_path.parent, ["gradient"])


def test_withheld_names_are_readable():
    from medlens.app.case_report import withheld_names

    names = withheld_names({"PatientName": "a", "ReferencedStudySequence[0].ReferencedSOPInstanceUID": "1.2",
                            "ReferencedStudySequence": "<sequence of 1 item(s)>", "private (0029,1010)": "x",
                            "private (0029,1011)": "y", "file name": "1.2.3.4.dcm"})
    assert names == ["PatientName", "ReferencedStudySequence", "file name", "2 private elements"]


def test_interpnet_sentence_is_the_models_own():
    """An InterpNET-style model writes a sentence; the report carries exactly what generate() says."""
    from medlens.selfexplain.interpnet import InterpNet, generate

    torch.manual_seed(0)
    model = InterpNet(2, 1, 2, widths=(4, 6), input_shape=(1, 16, 16), hidden=16, embed_dim=8, max_len=8).double().eval()
    x = torch.rand(1, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    content, summary = case_report(model, x, methods=["gradient"])
    assert content.sentence == generate(model, x).sentences[0] == summary["sentence"]
    plain, _ = case_report(make_model(2, num_classes=2), make_input(2, batch=1), methods=["gradient"])
    assert plain.sentence is None


def test_native_scan_must_match_the_input_kind_and_short_class_lists_are_filled():
    model, x = make_model(2, num_classes=3), make_input(2, batch=1)
    with pytest.raises(InputError, match="native scan has shape"):
        case_report(model, x, case=CaseInput(native=np.zeros((4, 8, 8))), methods=["gradient"])
    content, _ = case_report(model, x, meta={"class_names": ["a"]}, methods=["gradient"])
    assert content.class_names == ["a", "class 1", "class 2"]


def test_interpnet_sentence_about_an_unlike_input_says_so():
    """A blank image got "there is a nodule in the image" with nothing beside it (tour14): the sentence
    of a case unlike the training data is introduced as such."""
    from medlens.evaluation.familiarity import familiarity_reference
    from medlens.report.case import render_case_report
    from medlens.selfexplain.interpnet import InterpNet

    torch.manual_seed(0)
    model = InterpNet(2, 1, 2, widths=(4, 6), input_shape=(1, 16, 16), hidden=16, embed_dim=8, max_len=8).double().eval()
    gen = torch.Generator().manual_seed(1)
    train, val = (torch.rand(n, 1, 16, 16, dtype=torch.float64, generator=gen) for n in (40, 20))
    meta = {"familiarity": familiarity_reference(model, train, val)}
    blank, _ = case_report(model, torch.zeros(1, 1, 16, 16, dtype=torch.float64), meta=meta, methods=["gradient"])
    assert blank.familiarity_unlike and blank.sentence
    assert "written about an input unlike the model" in render_case_report(blank)
    usual, _ = case_report(model, val[:1], meta=meta, methods=["gradient"])
    assert not usual.familiarity_unlike and "written about an input unlike" not in render_case_report(usual)
