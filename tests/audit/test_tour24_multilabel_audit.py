"""``medlens audit`` of a multi-label model (the file's ``meta["multilabel"]``: one sigmoid per
finding) shows each case's probability as that finding's own sigmoid, in cases.csv, cases.parquet
and the per-case captions of audit.html, and a strategy's change is measured on the same sigmoid.
Before, every per-case probability was a softmax across the findings."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch
from PIL import Image

from medlens.audit.intervention import ModelRemoval
from medlens.cli import main
from medlens.models import CNN, save_model

NAMES = ["effusion", "nodule", "mass", "edema"]
BIAS = torch.tensor([2.0, -2.0, 0.5, -1.0])  # effusion's sigmoid 0.881; its softmax 0.774


def _constant_cnn() -> CNN:
    torch.manual_seed(0)
    cnn = CNN(2, 1, 4, widths=(4, 8), input_shape=(1, 16, 16)).eval()
    with torch.no_grad():  # the logits are the bias whatever the input
        cnn.classifier.weight.zero_()
        cnn.classifier.bias.copy_(BIAS)
    return cnn


@pytest.fixture(params=["meta", "torchscript"])
def audited(tmp_path, request):
    """A folder audited with a multi-label model: a medlens file saying so in its meta, or a
    TorchScript file (which has no meta) with --multi-label."""
    folder = tmp_path / "scans"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(3):
        Image.fromarray(rng.integers(0, 256, (16, 16)).astype(np.uint8)).save(folder / f"c{k}.png")
    if request.param == "meta":
        model, flag = save_model(_constant_cnn(), tmp_path / "m.pt",
                                 {"input_shape": [1, 16, 16], "class_names": NAMES, "multilabel": True}), []
    else:
        model, flag = tmp_path / "m.ts", ["--multi-label"]
        torch.jit.save(torch.jit.trace(_constant_cnn(), torch.zeros(1, 1, 16, 16)), model)
    out = tmp_path / "a"
    assert main(["audit", "--model", str(model), "--data", str(folder), "--size", "16,16", "--methods", "gradient",
                 "--cluster-method", "gradient", "--metric-option", "deletion_auc.steps=2",
                 "--metric-option", "insertion_auc.steps=2", "--out", str(out), "--quiet", *flag]) == 0
    return out


def test_each_case_shows_its_findings_sigmoid(audited):
    rows = list(csv.DictReader((audited / "cases.csv").open()))
    assert len(rows) == 3
    for r in rows:
        assert r["predicted"] == "0"
        assert float(r["probability"]) == pytest.approx(float(torch.sigmoid(BIAS[0])), abs=1e-6)
    import pandas as pd

    stored = pd.read_parquet(audited / "cases.parquet")["probabilities"]
    np.testing.assert_allclose(np.stack(stored.to_list()), np.tile(torch.sigmoid(BIAS).numpy(), (3, 1)), atol=1e-6)


def test_a_removal_changes_the_same_sigmoid(tmp_path):
    """Nothing removed from a constant model changes nothing: the before (the stored sigmoid) and
    the after are the same probability; a softmax after a sigmoid before reads as a change of 0.11."""
    from medlens import MultiLabel
    from medlens.audit.cases import AuditSettings, audit_batch

    model = MultiLabel(_constant_cnn())
    x = torch.rand(2, 1, 16, 16)
    results = audit_batch(model, x, None, labels=[None, None], masks=None, indices=[0, 1], cases=["a", "b"],
                          settings=AuditSettings(methods=("gradient",), cluster_method="gradient",
                                                 metric_options={"deletion_auc": {"steps": 2}, "insertion_auc": {"steps": 2}}))
    assert results[0].probability == pytest.approx(float(torch.sigmoid(BIAS[0])), abs=1e-6)
    removal = ModelRemoval(model, None, results, grid=(2, 2), batch_size=2, seed=0, n_draws=0)
    change = removal._change(x, torch.zeros(2, 16, 16, dtype=torch.bool), [0, 1])
    np.testing.assert_allclose(change.numpy(), 0.0, atol=1e-6)
