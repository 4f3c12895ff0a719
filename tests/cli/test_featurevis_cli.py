"""``medlens featurevis``, the pictures and the demo section."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from medlens.cli import main
from medlens.cli.featurevis import parse_indices
from medlens.errors import InputError
from medlens.models import CNN, save_model
from medlens.report import Report

PNG = b"\x89PNG"



@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    torch.manual_seed(0)
    model = CNN(2, 1, 2, widths=(4, 8), input_shape=(1, 16, 16))
    path = tmp_path_factory.mktemp("fv") / "m.pt"
    save_model(model, path, {"input_shape": [1, 16, 16], "class_names": ["normal", "pneumonia"]})
    return path


def run_cli(model_file, out, *extra):
    return main(["featurevis", "--model", str(model_file), "--out", str(out), "--steps", "6", *extra])


def test_channel_objective_writes_grid_curves_images_and_summary(model_file, tmp_path):
    out = tmp_path / "o"
    code = run_cli(model_file, out, "--objective", "channel", "--layer", "features.block1.act", "--channels", "0-3")
    assert code == 0
    assert (out / "featurevis.png").read_bytes().startswith(PNG)
    assert (out / "curves.png").read_bytes().startswith(PNG)
    images = np.load(out / "images.npy")
    assert images.shape == (4, 1, 16, 16) and images.min() >= 0 and images.max() <= 1
    summary = json.loads((out / "summary.json").read_text())
    assert [u["label"] for u in summary["units"]] == ["ch 0", "ch 1", "ch 2", "ch 3"]
    assert summary["units"][2]["objective"] == "channel(features.block1.act, 2)"
    assert summary["steps"] == 6 and summary["steps_per_second"] > 0


@pytest.mark.parametrize("args, n", [
    (["--objective", "probability"], 2),  # every class by default, named
    (["--objective", "logit", "--classes", "1"], 1),
    (["--objective", "channel", "--layer", "features.block2.act"], 8),  # every channel by default
    (["--objective", "neuron", "--layer", "features.block2.conv", "--channels", "0,5", "--position", "2,3"], 2),
    (["--objective", "layer", "--layer", "features.block2.act", "--per-objective", "3", "--diversity", "0.5", "--tv", "0.01",
      "--param", "pixel", "--transforms", "none"], 3),
])
def test_objective_kinds(model_file, tmp_path, args, n):
    out = tmp_path / "o"
    assert run_cli(model_file, out, *args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["units"]) == n
    if "probability" in args:
        assert [u["label"] for u in summary["units"]] == ["normal", "pneumonia"]


def test_direction_objective_reads_a_vector(model_file, tmp_path):
    vec = tmp_path / "v.npy"
    np.save(vec, np.arange(8.0))
    out = tmp_path / "o"
    code = run_cli(model_file, out, "--objective", "direction", "--layer", "features.block2.act", "--vector", str(vec))
    assert code == 0
    assert json.loads((out / "summary.json").read_text())["units"][0]["objective"] == "direction(features.block2.act)"


@pytest.mark.parametrize("args, message", [
    (["--objective", "channel", "--layer", "nope"], "no layer named 'nope'"),
    (["--objective", "channel", "--layer", "features.block1.act", "--channels", "9"], "channel 9 does not exist"),
    (["--objective", "channel"], "needs --layer"),
    (["--objective", "channel", "--layer", "features.block1.act", "--channels", "a-b"], "must look like 0-15"),
    (["--objective", "logit", "--classes", "5"], "class 5 is out of range"),
    (["--objective", "direction", "--layer", "features.block2.act"], "needs --vector"),
    (["--objective", "neuron", "--layer", "features.block2.act", "--channels", "0", "--position", "99,0"], "position"),
])
def test_bad_arguments_exit_2_without_output(model_file, tmp_path, capsys, args, message):
    out = tmp_path / "o"
    assert run_cli(model_file, out, *args) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


@pytest.fixture(scope="module")
def cases_npz(tmp_path_factory):
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("data") / "cases.npz"
    np.savez(path, train_images=rng.random((12, 16, 16)).astype(np.float32), train_labels=np.arange(12) % 2)
    return path


def test_data_shows_each_channels_reference_cases_beside_its_picture(model_file, cases_npz, tmp_path):
    from medlens.attribution.lrp import composite_named
    from medlens.attribution.lrp.method import concept_relevance, relevance
    from medlens.core.targets import Target
    from medlens.data.cases import labelled_set
    from medlens.models import load_model

    out = tmp_path / "o"
    code = run_cli(model_file, out, "--layer", "features.block2.act", "--channels", "0,3", "--data", str(cases_npz),
                   "--references", "3", "--batch-size", "5")
    assert code == 0 and (out / "references.png").read_bytes().startswith(PNG)
    maps = np.load(out / "reference_maps.npy")
    assert maps.shape == (2, 3, 1, 16, 16) and np.isfinite(maps).all()
    units = json.loads((out / "summary.json").read_text())["units"]
    # naive reference: each case alone, its predicted class explained, the channel's relevance
    # at the layer summed over space; the reference cases are the three largest
    model, _ = load_model(model_file)
    cases = labelled_set(cases_npz, "train").inputs.float()
    layer = dict(model.named_modules())["features.block2.act"]
    per_case = torch.cat([
        concept_relevance(relevance(model, cases[i:i + 1], Target(torch.tensor([int(model(cases[i:i + 1]).argmax())])),
                                    composite_named("epsilon-plus"), layer=layer))
        for i in range(len(cases))])
    for unit, c in zip(units, (0, 3)):
        chosen = [r["case"] for r in unit["reference_cases"]]
        assert chosen == per_case[:, c].argsort(descending=True)[:3].tolist()
        np.testing.assert_allclose([r["relevance"] for r in unit["reference_cases"]], per_case[chosen, c].numpy(),
                                   rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize("args, message", [
    (["--objective", "probability"], "needs --objective channel or neuron"),
    (["--layer", "features.block2.act", "--composite", "nope"], "unknown LRP composite"),
    (["--layer", "features.block2.act", "--references", "0"], "--references must be at least 1"),
])
def test_bad_data_arguments_exit_2_before_any_work(model_file, cases_npz, tmp_path, capsys, args, message):
    out = tmp_path / "o"
    assert run_cli(model_file, out, "--data", str(cases_npz), *args) == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_parse_indices():
    assert parse_indices("0-3,7", "--channels") == [0, 1, 2, 3, 7]
    assert parse_indices("5", "--channels") == [5]
    for bad in ("", "3-1", "x"):
        with pytest.raises(InputError):
            parse_indices(bad, "--channels")


def test_pictures_for_1d_2d_3d():
    from medlens.viz import figure_png
    from medlens.viz.featurevis import feature_grid, objective_curves

    fig = feature_grid(torch.rand(10, 1, 12, 12), [f"ch {i}" for i in range(10)], "t", n_cols=4)
    assert sum(ax.has_data() for ax in fig.axes) == 10 and len(fig.axes) == 12  # 3 rows of 4
    assert figure_png(fig).startswith(PNG)
    fig = feature_grid(torch.rand(3, 2, 50), title="signals")
    assert [len(ax.lines) for ax in fig.axes] == [2, 2, 2]  # one line per channel
    assert figure_png(fig).startswith(PNG)
    fig = feature_grid(torch.rand(2, 1, 7, 8, 8), ["a", "b"], n_slices=3)
    assert len(fig.axes) == 6 and fig.axes[0].get_title() == "slice 1 of 7" and fig.axes[2].get_title() == "slice 7 of 7"
    assert figure_png(fig).startswith(PNG)
    rgb = feature_grid(torch.rand(1, 3, 8, 8))
    assert rgb.axes[0].images[0].get_array().shape == (8, 8, 3)
    assert figure_png(objective_curves(torch.rand(20, 3), ["a", "b", "c"])).startswith(PNG)


def test_demo_section_quick(tmp_path):
    from medlens.app.demo import SECTIONS, DemoContext, attribution_section
    from medlens.app.featurevis_section import featurevis_section

    assert SECTIONS.index(featurevis_section) == SECTIONS.index(attribution_section) + 1
    torch.manual_seed(0)
    model = CNN(2, 1, 2, widths=(8, 16, 32), input_shape=(1, 28, 28)).eval()
    inputs = torch.rand(80, 1, 28, 28)
    labels = torch.arange(80) % 2
    ctx = DemoContext(tmp_path, model, {}, inputs, labels, [0, 1], ["normal", "pneumonia"], seed=0, quick=True)
    report = Report("t")
    state = {k: v.clone() for k, v in model.state_dict().items()}
    featurevis_section(ctx, report)
    html = report.render()
    assert "Feature visualisation" in html and html.count("data:image/png") == 4 and "Relevance maximisation" in html
    assert "features.block1.act" in html and "features.block3.act" in html and "Yardstick" in html
    assert "probability reached" in html and "pneumonia" in html
    assert ctx.timings["featurevis"] > 0
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
