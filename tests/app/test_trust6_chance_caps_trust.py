"""A model no better than the most frequent class never gets a "supported" map in the case report.

Seen: a CNN that memorised 120 BreastMNIST cases with shuffled labels (training loss 0.0004; its
validation record no better than the majority class, so the report already warned "chance") was
"supported" on test case 0: "On this case the gradient map passes both checks: it points at what
the model uses". What such a model uses is no evidence of the finding.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medlens.app.case_report import CaseCheck
from medlens.app.case_report.trust import trust_from_checks, within_model_record

CHANCE = [{"code": "chance", "message": "The model is no better than always answering the most frequent class ..."}]


def _passing_check(method: str) -> CaseCheck:
    """Beats all 19 random maps (p = 0.05), both model-free maps, changes with the weights."""
    return CaseCheck(method=method, deletion_auc=0.1, random_auc=np.linspace(0.4, 0.6, 19), edge_auc=0.3,
                     centre_auc=0.35, randomisation_rho=0.05, deletion_drop=0.8)


def test_a_chance_level_model_caps_supported_at_caution():
    trust = trust_from_checks([_passing_check("gradient"), _passing_check("gradcam")])
    assert trust.level == "supported"  # the checks themselves pass
    capped = within_model_record(trust, CHANCE)
    assert capped.level == "caution" and all(m.level == "caution" for m in capped.methods)
    assert "no better than always answering the most frequent class" in capped.headline
    assert "passes both checks" not in capped.headline


def test_without_a_capping_warning_the_verdict_stands():
    trust = trust_from_checks([_passing_check("gradient")])
    assert within_model_record(trust, [{"code": "downsampled", "message": "..."}]) is trust


def test_an_input_unlike_the_training_data_caps_supported_at_caution():
    """Seen: a green "supported" box beside "This scan is unlike the cases the model was trained on
    ... the highlighted areas may mean nothing here" on the same page."""
    trust = trust_from_checks([_passing_check("gradient"), _passing_check("gradcam")])
    capped = within_model_record(trust, [{"code": "unlike_training", "message": "..."}])
    assert capped.level == "caution" and all(m.level == "caution" for m in capped.methods)
    assert "unlike the cases the model was trained on" in capped.headline
    both = within_model_record(trust, [*CHANCE, {"code": "unlike_training", "message": "..."}])
    assert "most frequent class" in both.headline and "unlike the cases" in both.headline


@pytest.mark.slow
def test_a_model_that_memorised_shuffled_labels_is_not_supported(tmp_path):
    import json

    import medlens
    from medlens.data import load_dataset
    from medlens.models import save_model
    from medlens.models.cnn import CNN

    gen = np.random.default_rng(2)
    train = load_dataset("breastmnist", "train")
    x, y = train.inputs[:120], torch.as_tensor(gen.permutation(train.labels[:120].numpy()))
    torch.manual_seed(0)
    model = CNN(2, 1, 2, input_shape=(1, 28, 28))
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(300):  # no model selection: the weights that memorised the shuffled labels
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    meta = {"class_names": ["malignant", "normal or benign"], "input_shape": [1, 28, 28],
            "val": {"accuracy": 0.731, "auroc": 0.47, "majority_share": 0.731}}
    path = save_model(model, tmp_path / "memorised.pt", meta)
    levels = []
    for i in range(4):
        out = tmp_path / f"case{i}"
        medlens.case_report(medlens.ReportRequest(model=str(path), input="breastmnist", index=i, out=str(out), quiet=True))
        case = json.loads((out / "case.json").read_text())
        assert case["warnings"][0]["code"] == "chance"
        levels += [case["trust"]["level"], *case["trust"]["methods"].values()]
    assert "supported" not in levels
