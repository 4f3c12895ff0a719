"""Prediction basis of a single-logit binary model (one output, its sigmoid the probability of
class 1): the retrieved cases' predicted classes are read as the queries' are."""

from __future__ import annotations

import torch
from torch import nn

from medlens.selfexplain.basis import prediction_basis


class OneLogit(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        return self.fc(self.act(self.conv(x)).mean((2, 3)))


def test_neighbours_predicted_class_follows_the_sigmoid():
    torch.manual_seed(0)
    model = OneLogit().eval()
    train = torch.rand(12, 1, 8, 8)
    with torch.no_grad():
        model.fc.bias -= model(train)[:, 0].sort().values[5:7].mean()  # half on each side, none near 0  # about half of the cases predicted class 1
        expected = (model(train)[:, 0] > 0).long()
    assert 0 < int(expected.sum()) < 12
    basis = prediction_basis(model, train[:3], train, torch.zeros(12, dtype=torch.long), k=5, layer="act",
                             saliency=False)
    assert torch.equal(basis.predictions, expected[basis.indices])
    # each query is its own nearest case: both readings of its class must agree
    assert torch.equal(basis.predictions[:, 0], basis.query_predictions)
