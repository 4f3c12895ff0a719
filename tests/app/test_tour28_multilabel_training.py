"""``medlens train`` on an npz whose labels are ``(N, 3)`` of 0/1 (ChestMNIST's layout) trains one
sigmoid per finding and stores meta multilabel with each finding's validation and test record; every
command then works on the file: predict scores each finding, explain takes --target-class by name,
evaluate explains the highest-scoring finding or the one named; the chance warning is read per finding."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medlens.cli import main
from medlens.models import load_model

FINDINGS = ["bright_left", "bright_top", "dark"]


def _split(rng, n):
    x = rng.uniform(0.0, 0.3, (n, 16, 16)).astype(np.float32)
    y = rng.integers(0, 2, (n, 3)).astype(np.uint8)
    x[y[:, 0] == 1, :, :8] += 0.6  # each finding leaves its own trace
    x[y[:, 1] == 1, :8, :] += 0.6
    x[y[:, 2] == 1] *= 0.3
    return x, y


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("ml")
    rng = np.random.default_rng(0)
    arrays = {"class_names": np.array(FINDINGS)}
    for split, n in (("train", 48), ("val", 24), ("test", 24)):
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = _split(rng, n)
    np.savez(root / "findings.npz", **arrays)
    assert main(["train", "--data", str(root / "findings.npz"), "--out", str(root / "m.pt"), "--epochs", "2",
                 "--quiet"]) == 0
    return root


def test_an_npz_of_findings_trains_a_multilabel_model(trained, capsys):
    _model, meta = load_model(str(trained / "m.pt"))
    assert meta["multilabel"] is True and meta["class_names"] == FINDINGS and len(meta["pos_weight"]) == 3
    assert set(meta["val"]["findings"]) == set(FINDINGS) == set(meta["test"]["findings"])
    record = meta["val"]["findings"]["dark"]
    assert set(record) == {"auroc", "prevalence", "accuracy", "majority_share"}
    aurocs = [r["auroc"] for r in meta["val"]["findings"].values()]
    assert meta["val"]["auroc"] == pytest.approx(sum(aurocs) / 3)


def test_predict_scores_each_finding(trained):
    data, model = str(trained / "findings.npz"), str(trained / "m.pt")
    assert main(["predict", "--model", model, "--data", data, "--out", str(trained / "p"), "--quiet"]) == 0
    metrics = json.loads((trained / "p" / "metrics.json").read_text())
    assert metrics["n_labelled"] == 24 and set(metrics["findings"]) == set(FINDINGS)


def test_explain_takes_a_finding_by_name(trained, capsys):
    data, model = str(trained / "findings.npz"), str(trained / "m.pt")
    assert main(["explain", "--model", model, "--input", data, "--index", "1", "--target-class", "Dark",
                 "--out", str(trained / "e.png")]) == 0
    line = capsys.readouterr().out
    assert "findings at p >= 0.5" in line
    assert main(["explain", "--model", model, "--input", data, "--target-class", "effusion",
                 "--out", str(trained / "e2.png")]) != 0
    assert "'effusion' is neither a class index nor one of the model's classes" in capsys.readouterr().err


@pytest.mark.parametrize("target, words", [(None, "highest-scoring finding"),
                                           ("bright_top", "explained bright_top on every case")])
def test_evaluate_explains_the_highest_or_the_named_finding(trained, capsys, target, words):
    data, model = str(trained / "findings.npz"), str(trained / "m.pt")
    out = trained / f"ev-{target}"
    assert main(["evaluate", "--model", model, "--data", data, "--limit", "4", "--methods", "gradient",
                 "--metrics", "deletion_auc", "--baselines", "", "--out", str(out), "--quiet",
                 *(["--target", target] if target else [])]) == 0
    assert words in capsys.readouterr().out


def test_the_chance_warning_names_the_findings_at_chance():
    from medlens.app.model_quality import model_warnings

    val = {"accuracy": 0.8, "auroc": 0.75, "majority_share": 0.7, "findings": {
        "a": {"auroc": 0.95, "prevalence": 0.5, "accuracy": 0.9, "majority_share": 0.5},
        "b": {"auroc": 0.55, "prevalence": 0.1, "accuracy": 0.9, "majority_share": 0.9}}}
    (warning,) = model_warnings({"val": val})
    assert warning["code"] == "chance" and "1 of its 2 findings" in warning["message"] and "'b'" in warning["message"]
    val["findings"]["b"]["auroc"] = 0.8
    assert model_warnings({"val": val}) == []


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """30 PNGs of 15 patients labelled in NIH's layout, and the model trained on them."""
    from PIL import Image

    tmp_path = tmp_path_factory.mktemp("nih")
    rng = np.random.default_rng(1)
    x, y = _split(rng, 30)
    rows, scans = ["Image Index,Finding Labels,Patient ID"], tmp_path / "scans"
    scans.mkdir()
    for i in range(30):
        Image.fromarray((np.clip(x[i], 0, 1) * 255).astype(np.uint8)).save(scans / f"s{i:02d}.png")
        found = "|".join(FINDINGS[k] for k in range(3) if y[i, k]) or "No Finding"
        rows.append(f"s{i:02d}.png,{found},p{i // 2}")
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    assert main(["train", "--data", str(scans), "--labels", str(tmp_path / "labels.csv"), "--size", "16,16",
                 "--out", str(tmp_path / "m.pt"), "--epochs", "1", "--quiet"]) == 0
    return tmp_path, y


def test_a_folder_of_scans_with_nih_finding_labels_trains_by_patient(folder):
    tmp_path, _y = folder
    _model, meta = load_model(str(tmp_path / "m.pt"))
    assert meta["multilabel"] is True and meta["class_names"] == sorted(FINDINGS)
    assert meta["split"].startswith("by patient") and sum(meta["cases"][s] for s in ("train", "val", "test")) == 30


def test_predict_scores_nih_finding_labels(folder):
    tmp_path, y = folder
    assert main(["predict", "--model", str(tmp_path / "m.pt"), "--data", str(tmp_path / "scans"), "--labels",
                 str(tmp_path / "labels.csv"), "--out", str(tmp_path / "p"), "--quiet"]) == 0
    metrics = json.loads((tmp_path / "p" / "metrics.json").read_text())
    assert metrics["n_labelled"] == 30 and set(metrics["findings"]) == set(FINDINGS)
    assert [metrics["findings"][f]["positives"] for f in FINDINGS] == y.sum(0).tolist()
