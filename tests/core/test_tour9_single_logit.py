"""A binary classifier with one sigmoid logit ``(B, 1)``: its only target, 0, is the class its
logit scores. In probability space (RISE, deletion and insertion) the score of target 0 was
column 0 of ``[1 - p, p]``, the OTHER class: RISE's map came out inverted against the gradient's,
and deletion scored a faithful map as the worst. It is ``sigmoid(logit)``, as the same model
written with two logits ``(0, logit)`` scores its class 1."""

from __future__ import annotations

import torch
from torch import nn

import medlens
from medlens.core.targets import to_target
from medlens.evaluation import deletion


class Evidence(nn.Module):
    """A logit that grows with the top half of the image: ``(B, 1)``, or ``(B, 2)`` as ``(0, logit)``."""

    def __init__(self, columns: int) -> None:
        super().__init__()
        self.columns = columns
        self.weight = nn.Parameter(torch.zeros(1, 1, 8, 8))
        self.weight.data[..., :4, :] = 0.1

    def forward(self, x):
        logit = (x * self.weight).flatten(1).sum(1, keepdim=True)
        return logit if self.columns == 1 else torch.cat([torch.zeros_like(logit), logit], dim=1)


def _x() -> torch.Tensor:
    return torch.rand(2, 1, 8, 8, generator=torch.Generator().manual_seed(0)) + 0.5


def test_the_probability_of_target_0_is_the_sigmoid_of_the_logit():
    logits = torch.tensor([[2.0], [-1.0]])
    torch.testing.assert_close(to_target(0, logits).on_probabilities()(logits), torch.sigmoid(logits[:, 0]))


def test_rise_on_one_logit_equals_rise_on_the_same_model_with_two():
    one = medlens.explain(Evidence(1), _x(), 0, "rise", n_masks=64, s=2).values
    two = medlens.explain(Evidence(2), _x(), 1, "rise", n_masks=64, s=2).values
    torch.testing.assert_close(one, two)
    assert (one[:, :, :4].mean() > one[:, :, 4:].mean()).item()  # the evidence is in the top half


def test_deletion_on_one_logit_scores_the_class_the_map_explains():
    x = _x()
    saliency = medlens.explain(Evidence(1), x, 0, "gradient").values * x
    one = deletion(Evidence(1), x, saliency, torch.zeros(2, dtype=torch.long), steps=4)
    two = deletion(Evidence(2), x, saliency, torch.ones(2, dtype=torch.long), steps=4)
    torch.testing.assert_close(one.curve, two.curve)
