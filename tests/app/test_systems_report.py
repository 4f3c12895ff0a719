"""The systems report: each section from real (small) results, text escaped, and the CLI commands."""

from __future__ import annotations

import math
import re

import pytest
import torch

from medlens.app.systems import GroupINNResult, SciNetResult, run_deeptune, run_scinet
from medlens.cli import main
from medlens.models import CNN
from medlens.models.io import load_model
from medlens.report.html import Report
from medlens.report.systems import deeptune_section, groupinn_section, scinet_section
from medlens.systems.scinet import LatentAnalysis


def test_deeptune_runs_end_to_end_and_its_section_reports_every_neuron():
    torch.manual_seed(0)
    members = [CNN(2, 1, 2, widths=(4, 6), kernel_size=5, input_shape=(1, 28, 28)).eval() for _ in range(2)]
    r = run_deeptune(members, n_stimuli=200, steps=4)
    k = len(r.neuron_names)
    assert r.member_correlation.shape == (2, k) and r.consensus_correlation.shape == (k,)
    assert r.member_images.shape == (2, k, 1, 28, 28) and r.consensus_images.shape == (k, 1, 28, 28)
    assert r.member_similarity.shape == (2, k) and float(r.member_similarity.abs().max()) <= 1 + 1e-9
    assert r.noise_ceiling == pytest.approx(1 / math.sqrt(1.09))
    report = Report("t")
    deeptune_section(report, r)
    html = report.render()
    assert html.count("<tr>") == k + 1 and "data:image/png;base64," in html
    assert "Noise ceiling of the correlation: 0.958" in html


def _scinet_result(name: str) -> SciNetResult:
    a = LatentAnalysis(torch.tensor([[0.99, 0.1, 0.0], [0.05, 0.97, 0.0]], dtype=torch.float64), torch.tensor([0, 1]),
                       torch.tensor([0.99, 0.97], dtype=torch.float64), torch.tensor([1.5, 0.3, 0.001]),
                       torch.tensor([True, True, False]), 0.05, 0.28, (name, "damping b"))
    grid = torch.linspace(0, 10, 11)
    return SciNetResult(a, torch.randn(20, 3), torch.rand(20, 2), torch.randn(3, 5), torch.randn(3, 5, 11), grid,
                        torch.cos(grid), [], None, {"beta": 1e-3, "n_train": 100, "n_test": 20})


def test_scinet_section_gives_the_verdict_and_escapes_text():
    report = Report("t")
    scinet_section(report, _scinet_result("<kappa>"))
    html = report.render()
    assert "&lt;kappa&gt;" in html and "<kappa>" not in html
    assert "Each parameter is held by its own neuron; 2 of 3 neurons are active, 1 switched off." in html
    assert "verdict-good" in html and "switched off" in html
    assert len(re.findall("data:image/png;base64,", html)) == 2


def test_scinet_section_says_when_a_parameter_is_not_captured():
    r = _scinet_result("kappa")
    r.analysis.best_correlation[1] = 0.6
    report = Report("t")
    scinet_section(report, r)
    assert "Not every parameter is held by its own neuron" in report.render()


def test_groupinn_section_tabulates_both_models_and_the_baseline():
    g = 4
    r = GroupINNResult(0.9, 0.95, 1.0, 0.62, 0.01, 0.85, torch.randn(2, g, g), torch.randn(g, g), 0.1, 0.0,
                       torch.arange(40) % g, torch.arange(40) % g, None, None,
                       {"n_groups": g, "n_train": 60, "n_test": 200, "cohesion_weight": 1.0})
    report = Report("t")
    groupinn_section(report, r)
    html = report.render()
    assert "logistic regression on the flattened connectivity" in html and "0.62" in html and "0.95" in html
    assert "paper&#x27;s losses only" in html


def test_run_scinet_measures_a_given_model():
    torch.manual_seed(0)
    from medlens.systems.scinet import SciNet

    r = run_scinet(model=SciNet(latent=2, hidden=(8,)).eval(), n_test=100)
    assert r.traversal.shape == (2, 5, 101) and r.latent_means.shape == (100, 2)
    assert r.analysis.correlation.shape == (2, 2)


def test_medlens_train_reaches_the_system_architectures(tmp_path, capsys):
    out = tmp_path / "scinet.pt"
    assert main(["train", "--arch", "scinet", "--data", "oscillators", "--epochs", "1", "--out", str(out)]) == 0
    model, meta = load_model(out)
    assert type(model).__name__ == "SciNet" and meta["data"] == "oscillators"
    assert "held-out answer RMSE" in capsys.readouterr().out
    # a system's simulator is its only data; other data is a user error (exit 2), nothing written
    bad = tmp_path / "bad.pt"
    assert main(["train", "--arch", "groupinn", "--data", "pneumoniamnist", "--out", str(bad)]) == 2
    assert not bad.exists()
    assert "use --data simulated-fmri" in capsys.readouterr().err
