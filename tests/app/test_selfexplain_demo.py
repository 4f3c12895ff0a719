"""The self-explanation report sections and CLI commands, end to end on small settings."""

import json

import pytest
import torch

from medlens.cli import main
from medlens.data import load_dataset
from medlens.app.demo import DemoContext
from medlens.models import CNN, load_model, save_model
from medlens.report import Report
from medlens.app.selfexplain_sections import basis_section, concepts_section, interpnet_section


@pytest.fixture(scope="module")
def demo_model(tmp_path_factory):
    torch.manual_seed(0)
    model = CNN(2, 1, 2, widths=(4, 8, 8), input_shape=(1, 28, 28)).eval()
    path = save_model(model, tmp_path_factory.mktemp("m") / "cnn.pt", {"class_names": ["normal", "pneumonia"],
                                                                        "data": "pneumoniamnist"})
    return model, path


def test_sections_render_in_quick_mode_and_the_interpnet_is_cached(tmp_path, demo_model):
    model, _ = demo_model
    test = load_dataset("pneumoniamnist", "test")
    ctx = DemoContext(tmp_path, model, {"data": "pneumoniamnist"}, test.inputs[:40], test.labels[:40], [0, 1],
                      ["normal", "pneumonia"], quick=True)
    report = Report("t")
    for build in (interpnet_section, concepts_section, basis_section):
        build(ctx, report)
    html = report.render()
    for title in ("Generated explanations (InterpNET)", "Concepts (explanation space)", "Prediction basis"):
        assert title in html
    assert "BLEU-4" in html and "Generated: &quot;" in html and "similarity" in html and "concept 4" in html
    assert (tmp_path / "models" / "lesions-interpnet-quick.pt").exists()
    again = Report("t")
    interpnet_section(ctx, again)
    assert "It was reused" in again.render()
    assert {"interpnet", "concepts", "prediction_basis"} <= set(ctx.timings)


def test_concepts_command(tmp_path, demo_model, capsys):
    _, path = demo_model
    out = tmp_path / "concepts"
    rc = main(["concepts", "--model", str(path), "--data", "pneumoniamnist", "--k", "3", "--epochs", "5",
               "--limit", "200", "--top", "2", "--out", str(out)])
    assert rc == 0
    summary = json.loads((out / "concepts.json").read_text())
    assert len(summary["importance"]) == 2 and len(summary["importance"][0]) == 3
    assert set(summary["fidelity"]) == {"agreement", "kl", "reconstruction", "sparsity"}
    assert "held_out_fidelity" in summary and len(summary["top_images"]) == 3
    ae, meta = load_model(out / "concepts.pt")
    assert ae.config["n_concepts"] == 3 and meta["k"] == 3
    assert "concept 2" in (out / "report.html").read_text()
    printed = capsys.readouterr().out  # held out first: 200 fitted cases agree more than new ones do
    assert "3 concepts: held-out agreement" in printed and "on 468 cases; on the 200 cases they were fitted on" in printed
    assert main(["concepts", "--model", str(path), "--data", "pneumoniamnist", "--k", "0", "--out", str(out)]) == 2


def test_basis_command(tmp_path, demo_model):
    _, path = demo_model
    out = tmp_path / "basis"
    rc = main(["basis", "--model", str(path), "--data", "pneumoniamnist", "--index", "0", "--index", "3",
               "--k", "2", "--out", str(out)])
    assert rc == 0
    summary = json.loads((out / "basis.json").read_text())
    assert [len(q["neighbours"]) for q in summary["queries"]] == [2, 2]
    sims = [n["similarity"] for n in summary["queries"][0]["neighbours"]]
    assert sims == sorted(sims, reverse=True)
    assert "training image" in (out / "report.html").read_text()
    assert main(["basis", "--model", str(path), "--data", "pneumoniamnist", "--k", "0", "--out", str(out)]) == 2
    assert main(["basis", "--model", str(path), "--data", "pneumoniamnist", "--method", "nope", "--out", str(out)]) == 2


def test_train_interpnet_command(tmp_path, capsys):
    from medlens.data.synthetic.lesions import write_lesion_benchmark

    data = write_lesion_benchmark(tmp_path / "les.npz", size=24, n_train=32, n_val=8, n_test=8, seed=0)
    out = tmp_path / "interpnet.pt"
    args = ["train", "--data", str(data), "--arch", "interpnet", "--epochs", "1", "--quiet", "--out", str(out)]
    assert main(args) == 0
    model, meta = load_model(out)
    assert model.arch == "interpnet"
    assert set(meta["explanations"]) == {"greedy", "beam4"}
    assert "BLEU-4" in capsys.readouterr().out
    # a plain image set has no lesion attributes
    assert main(["train", "--data", "pneumoniamnist", "--arch", "interpnet", "--epochs", "1", "--quiet",
                 "--out", str(tmp_path / "x.pt")]) == 2
