"""Concepts of a single-logit binary model (one output, its sigmoid the probability of class 1):
the fidelity numbers must be those of the model's own Bernoulli prediction, checked by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medlens.selfexplain.concepts import learn_concepts
from medlens.selfexplain.embedding import embed


class OneLogit(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 6, 3, padding=1)
        self.act = nn.ReLU()
        self.classifier = nn.Linear(6, 1)

    def embed(self, x):
        return self.act(self.conv(x)).mean((2, 3))

    def forward(self, x):
        return self.classifier(self.embed(x))


def bernoulli_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return p * (p / q).log() + (1 - p) * ((1 - p) / (1 - q)).log()


def concept_probability(concepts, features: torch.Tensor) -> torch.Tensor:
    """P(class 1) of the concept prediction, whichever way the head writes it."""
    with torch.no_grad():
        q = concepts.autoencoder.predict(concepts.autoencoder.encode(features), concepts.classifier)
    return torch.sigmoid(q[:, 0]) if q.shape[1] == 1 else torch.softmax(q, 1)[:, 1]


@pytest.mark.parametrize("head", ["model", "linear"])
def test_fidelity_is_that_of_the_sigmoid_prediction(head):
    torch.manual_seed(0)
    model = OneLogit().double().eval()
    x = torch.rand(40, 1, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        model.classifier.bias -= model(x)[:, 0].median()  # both classes predicted
        p = torch.sigmoid(model(x)[:, 0])
    concepts = learn_concepts(model, x, k=1, head=head, epochs=5)
    q = concept_probability(concepts, embed(model, x))
    assert concepts.fidelity.kl == pytest.approx(float(bernoulli_kl(p, q).mean()), rel=1e-6, abs=1e-9)
    assert concepts.fidelity.agreement == pytest.approx(float(((p > 0.5) == (q > 0.5)).double().mean()))
    assert concepts.fidelity.kl > 0
    assert torch.equal(concepts.predictions, (p > 0.5).long())
