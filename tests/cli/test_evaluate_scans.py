"""``medlens evaluate`` on scans and on TorchScript models: the reading path of ``medlens explain``,
labels only from a CSV, skipped metrics named, unreadable files listed, one-line errors."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from medlens.cli import main
from medlens.data.recipe import Recipe
from medlens.models import CNN, save_model
from tests.region_scans import write_region_scans

FAST = ["--metrics", "deletion_auc", "--metric-option", "deletion_auc.steps=4", "--baselines", "random", "--quiet"]


@pytest.fixture
def files(tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    rng = np.random.default_rng(1)
    for k in range(4):
        Image.fromarray((rng.random((36, 44)) * 255).astype(np.uint8)).save(scans / f"c{k}.png")
    (scans / "cut.png").write_bytes((scans / "c0.png").read_bytes()[:60])
    torch.manual_seed(0)
    cnn = CNN(2, 1, 2, widths=(4, 6), input_shape=(1, 20, 20)).eval()
    model = save_model(cnn, tmp_path / "m.pt", {"class_names": ["neg", "pos"], "input_shape": [1, 20, 20],
                                               "recipe": Recipe(normalize="unit", channels=1, size=(20, 20))})
    torch.jit.save(torch.jit.script(cnn), tmp_path / "scripted.pt")
    return scans, model, tmp_path / "scripted.pt"


def test_folder_without_labels_explains_the_predicted_class_and_lists_unreadable_files(files, tmp_path, capsys):
    scans, model, _ = files
    out = tmp_path / "ev"
    assert main(["evaluate", "--model", str(model), "--data", str(scans), "--methods", "gradient", "--out", str(out),
                 "--metrics", "all", "--metric-option", "deletion_auc.steps=4", "--metric-option",
                 "insertion_auc.steps=4", "--baselines", "random", "--quiet"]) == 3  # cut.png failed
    printed = capsys.readouterr().out
    assert "explained the predicted class: 4 of 4 case(s) have no label" in printed
    assert "skipped pointing_game, mass_in_mask" in printed and "the data have no evidence masks" in printed
    assert "1 case(s) could not be read" in printed and "results for 4 cases" in printed
    assert [r["case"] for r in csv.DictReader((out / "unreadable.csv").open())] == ["case-0004"]
    assert ["c0.png", "c1.png", "c2.png", "c3.png", "cut.png"] == [
        r["file"] for r in csv.DictReader((out / "identifiers.csv").open())]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["n_samples"] == 4 and summary["config"]["target"] == "predicted"


def test_labels_csv_gives_the_explained_class(files, tmp_path):
    scans, model, _ = files
    (tmp_path / "labels.csv").write_text("case,label\nc0.png,pos\nc1.png,0\nc2.png,1\nc3.png,neg\ncut.png,1\n")
    out = tmp_path / "ev"
    assert main(["evaluate", "--model", str(model), "--data", str(scans), "--labels", str(tmp_path / "labels.csv"),
                 "--methods", "gradient", "--out", str(out), *FAST]) == 3
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    targets = {r["sample"]: r["target"] for r in rows if r.get("type") == "result" and "target" in r}
    assert targets == {0: 1, 1: 0, 2: 1, 3: 0}


@pytest.mark.parametrize("extra, message", [
    (["--target", "label"], "--target label needs a label for every case: 4 of 4 case(s) have none"),
    (["--metrics", "pointing_game"], "needs ground-truth masks"),
    (["--labels", "bad.csv"], "label 'maybe' of case 'c0.png' is neither a class index nor a class name"),
    (["--window", "brain"], "nothing readable in"),
])
def test_bad_input_exits_2_with_one_line(files, tmp_path, capsys, extra, message):
    scans, model, _ = files
    (tmp_path / "bad.csv").write_text("case,label\nc0.png,maybe\n")
    extra = [str(tmp_path / e) if e == "bad.csv" else e for e in extra]
    code = main(["evaluate", "--model", str(model), "--data", str(scans), "--methods", "gradient",
                 "--out", str(tmp_path / "ev"), *FAST, *extra])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err, err


def test_torchscript_all_methods_leave_out_the_cam_family_with_a_note(files, tmp_path, capsys):
    scans, _, scripted = files
    out = tmp_path / "ev"
    assert main(["evaluate", "--model", str(scripted), "--data", str(scans), "--methods", "all", "--limit", "2",
                 "--recipe", str(_recipe(tmp_path)), "--option", "n_steps=4", "--option", "n_samples=2",
                 "--option", "n_masks=20", "--option", "occlusion.window=10", "--out", str(out), *FAST]) == 0
    printed = capsys.readouterr().out
    note = next(line for line in printed.splitlines() if line.startswith("note: left out"))
    assert "for this TorchScript model" in note and all(m in note for m in ("gradcam", "gradcam_pp", "fastcam"))
    methods = {r["method"] for r in json.loads((out / "summary.json").read_text())["rows"]}
    assert {"gradient", "integrated_gradients", "occlusion", "rise", "smoothgrad"} <= methods
    assert not methods & {"gradcam", "gradcam_pp", "fastcam"}


def _recipe(tmp_path):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps({"normalize": "unit", "channels": 1, "size": [20, 20]}))
    return path


@pytest.mark.parametrize("method", ["gradcam", "fastcam"])
def test_torchscript_cam_is_refused_in_one_line(files, tmp_path, capsys, method):
    scans, _, scripted = files
    code = main(["explain", "--model", str(scripted), "--input", str(scans / "c0.png"), "--recipe",
                 str(_recipe(tmp_path)), "--method", method, "--out", str(tmp_path / "ex"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert f"{method} reads a layer's activations through module hooks" in err and "TorchScript" in err
    assert "medlens model file" in err and not (tmp_path / "ex").exists()


def test_occlusion_on_torchscript_equals_occlusion_on_the_module(files, tmp_path):
    scans, model, scripted = files
    outs = []
    for name, path in (("eager", model), ("script", scripted)):
        out = tmp_path / name
        assert main(["explain", "--model", str(path), "--input", str(scans / "c1.png"), "--recipe", str(_recipe(tmp_path)),
                     "--method", "occlusion", "--option", "window=5", "--target", "1", "--out", str(out), "--quiet"]) == 0
        outs.append(np.load(out / "attribution.npy"))
    assert outs[0].shape == (36, 44) and np.allclose(outs[0], outs[1], atol=1e-6)


def test_masks_named_in_the_labels_file_score_localisation_on_the_model_grid(tmp_path, capsys):
    """Scans at 40x40 for a 20x20 model: each mask is drawn on the scan's grid and must be carried
    onto the model's grid like its scan, so the gradient of a model that reads only that region
    points inside it every time and puts all its mass there."""
    scans, labels, region = write_region_scans(tmp_path, seed=3)
    out = tmp_path / "ev"
    assert main(["evaluate", "--model", str(region), "--data", str(scans), "--labels", str(labels),
                 "--size", "20,20", "--normalize", "unit", "--methods", "gradient", "--metrics", "pointing_game,mass_in_mask",
                 "--baselines", "random", "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    scores = {r["metric"]: r["mean"] for r in summary["rows"] if r["method"] == "gradient"}
    assert scores["pointing_game"] == 1.0 and scores["mass_in_mask"] == pytest.approx(1.0)
    # a labels file that gives masks to some cases only is refused in one line
    (tmp_path / "some.csv").write_text("case,label,mask\ns0.png,1,masks/s0.npy\ns1.png,1,\n")
    assert main(["evaluate", "--model", str(region), "--data", str(scans), "--labels", str(tmp_path / "some.csv"),
                 "--size", "20,20", "--methods", "gradient", "--out", str(tmp_path / "ev2"), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "gives masks for 1 of 4 readable cases" in err and "\n" not in err
