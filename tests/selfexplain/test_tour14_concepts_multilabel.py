"""Concepts of a multi-label model (medlens.MultiLabel: one sigmoid per finding, ChestMNIST-like):
the fidelity numbers are those of the findings' own Bernoulli predictions, checked by hand, not
of a softmax across findings that can occur together."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import medlens
from medlens.selfexplain.concepts import learn_concepts
from medlens.selfexplain.embedding import embed

FINDINGS = 4


class Findings(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.act = nn.ReLU()
        self.fc = nn.Linear(6, FINDINGS)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).mean((2, 3)))


def test_fidelity_counts_each_findings_own_decision():
    torch.manual_seed(0)
    net = Findings().double().eval()
    x = torch.rand(30, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        net.fc.bias -= net(x).median(0).values  # each finding positive on about half the cases
        z = net(x)
    model = medlens.MultiLabel(net)
    concepts = learn_concepts(model, x, k=2, layer="model.act", epochs=5)
    with torch.no_grad():
        ae = concepts.autoencoder
        q = ae.predict(ae.encode(embed(model, x, layer="model.act")))
    p, r = torch.sigmoid(z), torch.sigmoid(q)
    kl = (p * (p / r).log() + (1 - p) * ((1 - p) / (1 - r)).log()).sum(1).mean()
    assert concepts.fidelity.kl == pytest.approx(float(kl), rel=1e-6)
    assert concepts.fidelity.agreement == pytest.approx(float(((z > 0) == (q > 0)).double().mean()))
    assert concepts.predictions.shape == (30, FINDINGS) and concepts.importance.shape == (FINDINGS, 2)
