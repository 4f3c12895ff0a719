"""``medlens train`` warns when the model ends no better than the most frequent class."""

from __future__ import annotations

import numpy as np
import torch

from medlens.app.recipes import chance_warning, majority_share
from medlens.cli import main


def test_majority_share_and_the_warning_threshold():
    assert majority_share(torch.tensor([0, 1, 1, 1])) == 0.75
    assert chance_warning({"accuracy": 0.75, "majority_share": 0.75}) is not None
    assert chance_warning({"accuracy": 0.70, "majority_share": 0.75}) is not None
    assert chance_warning({"accuracy": 0.80, "majority_share": 0.75}) is None
    assert chance_warning({"accuracy": 0.50}) is None  # older model files do not record the share


def test_train_on_inputs_that_carry_no_information_warns(tmp_path, capsys):
    """Every image is the same, so no model can beat the most frequent class: the command must say so."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", 40), ("val", 20), ("test", 20)):
        arrays[f"{split}_images"] = np.full((n, 8, 8), 100, np.uint8)
        arrays[f"{split}_labels"] = (rng.random((n, 1)) < 0.3).astype(np.int64)
    np.savez(tmp_path / "blank.npz", **arrays)
    assert main(["train", "--data", str(tmp_path / "blank.npz"), "--epochs", "1", "--out", str(tmp_path / "m.pt"), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "warning: the model is no better than always answering the most frequent class" in err
    # every later output that shows a finding of this model carries the warning, first
    import json

    model = str(tmp_path / "m.pt")
    assert main(["explain", "--model", model, "--input", str(tmp_path / "blank.npz"), "--index", "0",
                 "--method", "gradient", "--out", str(tmp_path / "ex")]) == 0
    printed = capsys.readouterr().out
    summary = json.loads((tmp_path / "ex" / "summary.json").read_text())
    assert summary["warnings"][0]["code"] == "chance" and "no better than always answering" in summary["warnings"][0]["message"]
    assert printed.index("warning (chance)") < printed.index("gradient for")
    assert main(["report", "--model", model, "--input", str(tmp_path / "blank.npz"), "--methods", "gradient",
                 "--out", str(tmp_path / "rep")]) == 0
    printed = capsys.readouterr().out
    case = json.loads((tmp_path / "rep" / "case.json").read_text())
    assert case["warnings"][0]["code"] == "chance" and printed.startswith("warning (chance)")
    assert "no better than always answering the most frequent class" in (tmp_path / "rep" / "report.html").read_text()
    assert main(["audit", "--model", model, "--data", str(tmp_path / "blank.npz"), "--limit", "8", "--methods",
                 "gradient", "--out", str(tmp_path / "audit"), "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines()[1].startswith("The model is no better than always answering")
    page = (tmp_path / "audit" / "audit.html").read_text()
    assert page.index("no better than always answering") < page.index("Accuracy on the")


def test_model_warnings_say_nothing_without_a_validation_record():
    from medlens.app.model_quality import model_warnings

    assert model_warnings({}) == [] and model_warnings({"val": {"accuracy": 0.9, "majority_share": 0.6}}) == []
    said = model_warnings({"val": {"accuracy": 0.5, "majority_share": 0.6}})
    assert [w["code"] for w in said] == ["chance"] and "(accuracy 0.500, most frequent class 0.600)" in said[0]["message"]
    assert "train longer" not in said[0]["message"]  # advice for whoever trains, not for whoever reads a finding


def test_a_model_that_ranks_the_classes_well_is_not_called_no_better_than_chance():
    """MIT-BIH beats (N vs A, 98.8% N): validation AUROC 0.990 but accuracy 0.968 below the 0.988 of
    always answering N (balanced sampling moves the threshold toward the rare class). It was called
    "no better than always answering the most frequent class" and its trust capped; it now gets a
    'threshold' warning that does not cap trust."""
    from medlens.app.model_quality import model_warnings
    from medlens.app.recipes import chance_fact, threshold_fact

    beats = {"accuracy": 0.968, "auroc": 0.990, "majority_share": 0.988}
    assert chance_fact(beats) is None and chance_warning(beats) == threshold_fact(beats)
    said = model_warnings({"val": beats})
    assert [w["code"] for w in said] == ["threshold"] and "AUROC 0.990" in said[0]["message"]
    assert "no better than" not in said[0]["message"]
    weak = {"accuracy": 0.533, "auroc": 0.617, "majority_share": 0.600}  # MTSamples urology vs surgery
    assert chance_fact(weak) is not None and threshold_fact(weak) is None
    assert chance_fact({"accuracy": 0.5, "auroc": float("nan"), "majority_share": 0.6}) is not None
    assert threshold_fact({"accuracy": 0.99, "auroc": 0.99, "majority_share": 0.6}) is None
