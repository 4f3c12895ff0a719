"""A multi-label model file (one sigmoid per finding, as ChestMNIST's 14) is read as one from the
command line: ``--multi-label`` or the file's ``meta["multilabel"]`` wrap it in ``MultiLabel``, so
explain/report/predict show each finding's own sigmoid (not a softmax across findings), name the
findings at p >= 0.5, and RISE scores a finding's sigmoid exactly as ``MultiLabel(model)`` does
from Python. Before, every such file was read as one softmax."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch

from medlens import MultiLabel, explain
from medlens.attribution.registry import method_call_options
from medlens.cli import main
from medlens.models import CNN, save_model

NAMES = ["effusion", "nodule", "mass", "edema"]
BIAS = torch.tensor([2.0, -2.0, 0.5, -1.0])  # sigmoids 0.881, 0.119, 0.622, 0.269: findings effusion, mass
RECIPE = ["--size", "24,24", "--normalize", "minmax"]


def _cnn(constant: bool) -> CNN:
    torch.manual_seed(0)
    cnn = CNN(2, 1, 4, widths=(4, 8), input_shape=(1, 24, 24)).eval()
    if constant:  # the logits are the bias whatever the input: closed-form probabilities
        with torch.no_grad():
            cnn.classifier.weight.zero_()
            cnn.classifier.bias.copy_(BIAS)
    return cnn


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tour18")
    scan = np.random.default_rng(0).random((24, 24)).astype(np.float32)
    scan[0, 0], scan[0, 1] = 0.0, 1.0  # minmax leaves it as it is: the model sees exactly this
    np.save(folder / "scan.npy", scan)
    meta = {"input_shape": [1, 24, 24], "class_names": NAMES}
    out = {"scan": folder / "scan.npy", "x": torch.from_numpy(scan)[None, None]}
    for constant in (True, False):
        tag = "const" if constant else "random"
        cnn = _cnn(constant)
        out[f"{tag}-meta"] = save_model(cnn, folder / f"{tag}-meta.pt", {**meta, "multilabel": True})
        out[f"{tag}-plain"] = save_model(cnn, folder / f"{tag}-plain.pt", meta)
        torch.jit.save(torch.jit.trace(cnn, torch.zeros(1, 1, 24, 24)), folder / f"{tag}.ts")
        out[f"{tag}-ts"] = folder / f"{tag}.ts"
    return out


def _explain(model, files, out, *extra):
    assert main(["explain", "--model", str(model), "--input", str(files["scan"]), *RECIPE, "--out", str(out),
                 "--quiet", *extra]) == 0
    return json.loads((out / "summary.json").read_text())


@pytest.mark.parametrize("how", [("const-meta",), ("const-plain", "--multi-label"), ("const-ts", "--multi-label")])
def test_explain_shows_each_findings_sigmoid(files, tmp_path, how):
    summary = _explain(files[how[0]], files, tmp_path / "o", *how[1:], "--method", "gradient")
    probs = list(summary["probabilities"].values())
    np.testing.assert_allclose(probs, torch.sigmoid(BIAS).tolist(), rtol=1e-6)
    assert summary["predicted_findings"] == (["effusion", "mass"] if how[0] != "const-ts" else ["class 0", "class 2"])
    assert summary["prediction"] == 0  # the highest-scoring finding is explained by default


def test_a_single_label_file_stays_a_softmax_without_the_flag(files, tmp_path):
    """The same file: a softmax across classes without the flag (as before), sigmoids with it."""
    plain = _explain(files["const-plain"], files, tmp_path / "plain", "--method", "gradient")
    np.testing.assert_allclose(list(plain["probabilities"].values()), torch.softmax(BIAS, 0).tolist(), rtol=1e-6)
    assert "predicted_findings" not in plain and plain["predicted_class"] == "effusion"
    flagged = _explain(files["const-plain"], files, tmp_path / "flagged", "--method", "gradient", "--multi-label")
    np.testing.assert_allclose(list(flagged["probabilities"].values()), torch.sigmoid(BIAS).tolist(), rtol=1e-6)
    np.testing.assert_array_equal(np.load(tmp_path / "plain" / "attribution.npy"),
                                  np.load(tmp_path / "flagged" / "attribution.npy"))  # gradients explain the logit either way


@pytest.mark.parametrize("model", ["random-meta", "random-ts"])
def test_rise_through_the_cli_equals_rise_on_multilabel_from_python(files, tmp_path, model):
    options = {"n_masks": 40, "s": 4}
    extra = [] if model == "random-meta" else ["--multi-label"]
    _explain(files[model], files, tmp_path / "o", "--method", "rise", "--target", "2",
             *[f"--option={k}={v}" for k, v in options.items()], *extra)
    cli = np.load(tmp_path / "o" / "attribution.npy")
    cnn = _cnn(False)
    expected = explain(MultiLabel(cnn), files["x"], 2, "rise", **method_call_options("rise", options, seed=0))
    np.testing.assert_allclose(cli, expected.values[0, 0].numpy(), rtol=1e-5, atol=1e-7)
    softmax = explain(cnn, files["x"], 2, "rise", **method_call_options("rise", options, seed=0))
    assert not np.allclose(cli, softmax.values[0, 0].numpy(), rtol=1e-3)  # it is not the softmax's RISE


def test_report_shows_findings_not_a_distribution(files, tmp_path):
    out = tmp_path / "r"
    assert main(["report", "--model", str(files["const-meta"]), "--input", str(files["scan"]), *RECIPE,
                 "--methods", "gradient", "--out", str(out), "--quiet"]) == 0
    case = json.loads((out / "case.json").read_text())
    np.testing.assert_allclose(list(case["probabilities"].values()), torch.sigmoid(BIAS).tolist(), rtol=1e-6)
    assert case["predicted_findings"] == ["effusion", "mass"]
    page = (out / "report.html").read_text()
    assert "<b>effusion, mass</b>" in page and "need not add up to 1" in page


def test_predict_writes_sigmoids_and_the_findings(files, tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["predict", "--model", str(files["const-plain"]), "--data", str(files["scan"]), *RECIPE,
                 "--multi-label", "--out", str(out), "--quiet"]) == 0
    (row,) = list(csv.DictReader((out / "predictions.csv").open()))
    assert row["predicted"] == "effusion;mass"
    np.testing.assert_allclose([float(row[f"probability.{n}"]) for n in NAMES], torch.sigmoid(BIAS).tolist(), rtol=1e-6)


def test_a_malformed_meta_field_is_one_line(files, tmp_path, capsys):
    bad = save_model(_cnn(True), tmp_path / "bad.pt", {"input_shape": [1, 24, 24], "multilabel": "yes"})
    assert main(["explain", "--model", str(bad), "--input", str(files["scan"]), *RECIPE, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "multilabel='yes'" in err and "\n" not in err


def _deletion(model, files, out, *extra):
    assert main(["evaluate", "--model", str(model), "--data", str(files["scan"]), *RECIPE, "--methods", "gradient",
                 "--metrics", "deletion_auc", "--baselines", "", "--out", str(out), "--quiet", *extra]) == 0
    lines = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    return next(r for r in lines if r["type"] == "result")


def test_evaluate_scores_deletion_on_each_findings_sigmoid(files, tmp_path):
    meta = _deletion(files["random-meta"], files, tmp_path / "meta")
    flagged = _deletion(files["random-plain"], files, tmp_path / "flag", "--multi-label")
    plain = _deletion(files["random-plain"], files, tmp_path / "plain")
    k = meta["target"]
    logits = _cnn(False)(files["x"]).detach()[0]
    # the curve starts at the unperturbed input: the target finding's own sigmoid, not its softmax share
    assert meta["curves"]["deletion_auc"][0] == pytest.approx(float(torch.sigmoid(logits[k])), rel=1e-5)
    assert plain["curves"]["deletion_auc"][0] == pytest.approx(float(torch.softmax(logits, 0)[k]), rel=1e-5)
    assert flagged["metrics"] == meta["metrics"] and flagged["curves"] == meta["curves"]


def test_featurevis_reads_the_files_meta_field(files, tmp_path):
    out = tmp_path / "fv"
    assert main(["featurevis", "--model", str(files["const-meta"]), "--objective", "probability", "--classes", "0",
                 "--steps", "2", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["multi_label"] is True
    np.testing.assert_allclose(summary["units"][0]["probabilities"], torch.sigmoid(BIAS).tolist(), rtol=1e-6)


def test_predict_says_why_it_gives_no_metrics_for_one_class_per_case(files, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text(f"case,label\n{files['scan'].name},effusion\n")
    out = tmp_path / "p"
    assert main(["predict", "--model", str(files["const-meta"]), "--data", str(files["scan"]), "--labels", str(labels),
                 *RECIPE, "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "no metrics: a multi-label model's labels must be one 0/1 column per finding" in printed
    assert not (out / "metrics.json").exists()


def test_predict_scores_each_finding_against_its_own_0_1_column(files, tmp_path, capsys):
    folder = tmp_path / "scans"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(6):
        scan = rng.random((24, 24)).astype(np.float32)
        scan[0, 0], scan[0, 1] = 0.0, 1.0
        np.save(folder / f"s{i}.npy", scan)
    truth = {f"s{i}.npy": [1, i % 2, 0, int(i < 3)] for i in range(6)}
    labels = tmp_path / "labels.csv"
    labels.write_text("case," + ",".join(NAMES) + "\n"
                      + "".join(f"{case}," + ",".join(map(str, row)) + "\n" for case, row in truth.items()))
    out = tmp_path / "p"
    assert main(["predict", "--model", str(files["random-meta"]), "--data", str(folder), "--labels", str(labels),
                 *RECIPE, "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    ids = {r["case"]: r["file"] for r in csv.DictReader((out / "identifiers.csv").open())}
    rows = {ids[r["case"]]: r for r in csv.DictReader((out / "predictions.csv").open())}
    probs = torch.tensor([[float(rows[c][f"probability.{n}"]) for n in NAMES] for c in truth], dtype=torch.float64)
    y = torch.tensor(list(truth.values()), dtype=torch.float64)
    for k, name in enumerate(NAMES):
        assert metrics["findings"][name]["accuracy"] == pytest.approx(float(((probs[:, k] >= 0.5).double() == y[:, k]).double().mean()))
        pos, neg = probs[y[:, k] == 1, k], probs[y[:, k] == 0, k]
        if len(pos) and len(neg):  # Mann-Whitney: the share of (positive, negative) pairs ranked right
            expected = float(((pos[:, None] > neg[None]).double() + 0.5 * (pos[:, None] == neg[None]).double()).mean())
            assert metrics["findings"][name]["auroc"] == pytest.approx(expected)
        else:
            assert metrics["findings"][name]["auroc"] is None
    assert metrics["n_labelled"] == 6 and "mean AUROC" in capsys.readouterr().out
