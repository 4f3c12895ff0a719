"""``medlens train --arch attention-rnn``, ``medlens attention``, the demo section and the pictures."""

from __future__ import annotations

import json

import pytest
import torch

from medlens.app.attention_section import attention_section, pick_examples
from medlens.cli import main
from medlens.data.synthetic.eeg import write_eeg_npz
from medlens.data.synthetic.reports_text import write_reports_npz
from medlens.models import load_model, save_model
from medlens.report import Report
from medlens.viz.signals import signal_strips_figure
from medlens.viz.text import highlighted_html, text_figure
from tests.conftest import make_model

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def reports_npz(tmp_path_factory):
    return write_reports_npz(tmp_path_factory.mktemp("data") / "reports.npz", n_train=40, n_val=12, n_test=12)


@pytest.fixture(scope="module")
def eeg_npz(tmp_path_factory):
    return write_eeg_npz(tmp_path_factory.mktemp("data") / "eeg.npz", n_train=16, n_val=8, n_test=8, seconds=2.0)


@pytest.mark.parametrize("data", ["reports_npz", "eeg_npz"])
def test_train_then_attention_command(data, request, tmp_path, capsys):
    npz = request.getfixturevalue(data)
    model_path = tmp_path / "m.pt"
    assert main(["train", "--arch", "attention-rnn", "--data", str(npz), "--out", str(model_path),
                 "--epochs", "1", "--quiet"]) == 0
    model, meta = load_model(model_path)
    assert model.arch == "attention-rnn" and meta["class_names"]
    out = tmp_path / "out"
    assert main(["attention", "--model", str(model_path), "--data", str(npz), "--out", str(out), "--limit", "6",
                 "--permutations", "5", "--ig-steps", "4", "--examples", "2"]) == 0
    payload = json.loads((out / "attention.json").read_text())
    assert payload["verdict"] in ("usable", "caution", "unreliable")
    summary = payload["summary"]
    assert summary["n_sequences"] == 6 and summary["mass_attention_mean"] is not None
    assert (out / "verdict.txt").read_text().startswith(f"verdict: {payload['verdict']}")
    html = (out / "report.html").read_text()
    assert "Kendall tau" in html and "Verdict" in html
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs and all((out / p).read_bytes().startswith(PNG) for p in pngs)
    if data == "reports_npz":
        assert "consolidation" in html or "opacity" in html or "infiltrate" in html or "pneumonia" in html
        assert any("integrated_gradients" in p for p in pngs)
    else:
        assert len(pngs) == 2 and all(f"sequence #{p[len('sequence'):-4]}:" in html for p in pngs)  # named as captioned
    assert "attention on" in capsys.readouterr().out


def test_attention_command_rejects_a_model_without_attention(tmp_path, reports_npz, capsys):
    path = save_model(make_model(1), tmp_path / "cnn.pt")
    code = main(["attention", "--model", str(path), "--data", str(reports_npz), "--out", str(tmp_path / "o")])
    assert code == 2 and "attention model" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_attention_command_rejects_bad_numbers(tmp_path, reports_npz, capsys):
    code = main(["attention", "--model", "x.pt", "--data", str(reports_npz), "--out", str(tmp_path / "o"),
                 "--permutations", "0"])
    assert code == 2 and "--permutations" in capsys.readouterr().err


def test_token_model_on_signals_is_a_clear_error(tmp_path, reports_npz, eeg_npz, capsys):
    model_path = tmp_path / "m.pt"
    main(["train", "--arch", "attention-rnn", "--data", str(reports_npz), "--out", str(model_path), "--epochs", "1",
          "--quiet"])
    code = main(["attention", "--model", str(model_path), "--data", str(eeg_npz), "--out", str(tmp_path / "o")])
    assert code == 2 and "token ids" in capsys.readouterr().err


def test_demo_section_quick(tmp_path):
    from medlens.app.demo import DemoContext

    ctx = DemoContext(tmp_path, None, {}, None, None, [], [], seed=0, quick=True)
    report = Report("t")
    attention_section(ctx, report)
    html = report.render()
    assert "Attention on ECG5000" in html and "Kendall tau" in html and "data:image/png" in html
    assert list((tmp_path / "models").glob("ecg5000-attention-rnn-*.pt"))
    # a second run reuses the cached model
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "models").iterdir()}
    attention_section(ctx, Report("t"))
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "models").iterdir()} == before


def test_highlighted_html_escapes_and_scales():
    html = highlighted_html(["<script>", "a&b", "lobe"], torch.tensor([0.1, 0.0, 0.4]), rationale=[1, 0, 0],
                            title="<b>t</b>")
    assert "<script>" not in html and "&lt;script&gt;" in html and "a&amp;b" in html and "&lt;b&gt;t" in html
    from medlens.viz.colours import NEGATIVE_RGB, POSITIVE_RGB  # the one colour scheme of signed maps

    pos, neg = ",".join(map(str, POSITIVE_RGB)), ",".join(map(str, NEGATIVE_RGB))
    assert f"rgba({pos},1.000)" in html and f"rgba({pos},0.250)" in html  # opacity = w / max w
    assert html.count("font-weight:700") == 1
    signed = highlighted_html(["x", "y"], [-2.0, 1.0])
    assert f"rgba({neg},1.000)" in signed and f"rgba({pos},0.500)" in signed


def test_figures_render_to_png():
    from medlens.viz import figure_png

    words = ["no", "focal", "consolidation", "."] * 10
    assert figure_png(text_figure(words, torch.rand(40), rationale=torch.ones(40), title="t")).startswith(PNG)
    signal = torch.randn(3, 200)
    mask = torch.zeros(200)
    mask[50:90] = 1
    fig = signal_strips_figure(signal, [("attention", torch.rand(200)), ("IG", torch.randn(200))], mask=mask,
                               fs=100.0, channel_names=["a", "b", "c"])
    assert len(fig.axes) == 3
    assert figure_png(fig).startswith(PNG)


def test_pick_examples_alternates_classes_and_prefers_evidence():
    labels = torch.tensor([0, 0, 1, 1, 1])
    masks = torch.zeros(5, 1, 4)
    masks[4, 0, 1] = 1
    assert pick_examples(labels, masks, 3) == [4, 0, 2]
    assert pick_examples(labels, None, 3) == [0, 2, 1]
    assert pick_examples(labels, None, 0) == []
