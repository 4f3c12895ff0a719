"""A multi-label model (one sigmoid per finding) wrapped in ``medlens.MultiLabel``: RISE and
deletion/insertion score each finding by its own sigmoid, not a softmax across findings.

Finding 0's logit reads only the left half of the image, finding 1's only the right half. RISE on
the wrapped model must equal RISE on a model that outputs the findings' sigmoids scored as they
are (same masks); without the wrapper the softmax couples finding 0 to the right half.
"""

import pytest
import torch
from torch import nn

import medlens
from medlens.core.targets import probability_target, to_target
from medlens.evaluation import deletion


class TwoFindings(nn.Module):
    def forward(self, x):
        w = x.shape[-1] // 2
        left = x[..., :w].mean(dim=(1, 2, 3))
        right = x[..., w:].mean(dim=(1, 2, 3))
        return torch.stack([4 * left - 2, 8 * right + 2], dim=1)


class Sigmoids(nn.Module):
    def forward(self, x):
        return torch.sigmoid(TwoFindings()(x))


def test_rise_scores_a_finding_by_its_own_sigmoid():
    x = torch.rand(2, 1, 16, 16) * 0.5 + 0.5
    options = dict(target=0, method="rise", n_masks=64, seed=0)
    multi = medlens.explain(medlens.MultiLabel(TwoFindings()), x, **options).values
    reference = medlens.explain(Sigmoids(), x, score="output", **options).values
    plain = medlens.explain(TwoFindings(), x, **options).values
    torch.testing.assert_close(multi, reference)
    assert not torch.allclose(plain, reference, atol=1e-3)


def test_probability_target_spaces():
    logits = torch.tensor([[0.5, 3.0], [-1.0, 2.0]])
    t = to_target(0, logits)
    torch.testing.assert_close(probability_target(t, medlens.MultiLabel(TwoFindings()))(logits), torch.sigmoid(logits[:, 0]))
    torch.testing.assert_close(probability_target(t, TwoFindings())(logits), torch.softmax(logits, 1)[:, 0])
    probs = torch.sigmoid(logits)
    torch.testing.assert_close(
        probability_target(t, medlens.MultiLabel(TwoFindings(), outputs="probabilities"))(probs), probs[:, 0])


def test_deletion_reads_the_findings_sigmoid():
    x = torch.ones(1, 1, 8, 8)
    model = medlens.MultiLabel(TwoFindings())
    attribution = torch.zeros(1, 1, 8, 8)
    attribution[..., :4] = 1.0  # the left half first
    curve = deletion(model, x, attribution, target=0, steps=2, patch=(8, 4))
    first = torch.sigmoid(torch.tensor(4.0 - 2))
    assert float(curve.curve[0, 0]) == pytest.approx(float(first), abs=1e-6)


def test_unknown_outputs_word_is_refused():
    with pytest.raises(medlens.TargetError, match="outputs must be one of"):
        medlens.MultiLabel(TwoFindings(), outputs="sigmoid")
