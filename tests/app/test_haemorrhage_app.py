"""The haemorrhage runner's bookkeeping: balanced sampling draws every class equally often,
subtype scores and their confusion matrix, slice maps one per slice."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medlens.app.systems.haemorrhage import attribution_maps, balanced_subtypes, class_balanced_weights, subtype_scores
from medlens.models.training import train_classifier


def test_balanced_sampling_draws_classes_equally_often():
    labels = torch.tensor([0] * 90 + [1] * 9 + [2] * 1)
    x = torch.randn(100, 3)
    seen = []

    def loss(logits, y):
        seen.append(y)
        return nn.functional.cross_entropy(logits, y)

    w = class_balanced_weights(labels, 3)
    torch.testing.assert_close(w[labels == 2].sum(), w[labels == 0].sum())
    half = class_balanced_weights(labels, 3, none_share=0.5)  # none as often as both others together
    torch.testing.assert_close(half[labels == 0].sum(), half[labels > 0].sum())
    torch.testing.assert_close(half[labels == 1].sum(), half[labels == 2].sum())
    train_classifier(nn.Linear(3, 3), x, labels, x, labels, epochs=20, batch_size=50, seed=0, loss_fn=loss,
                     sample_weights=w, progress=False)
    share = torch.bincount(torch.cat(seen), minlength=3).double() / len(torch.cat(seen))
    torch.testing.assert_close(share, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.04, rtol=0)
    seen.clear()  # a zero weight is never drawn
    train_classifier(nn.Linear(3, 3), x, labels, x, labels, epochs=2, seed=0, loss_fn=loss,
                     sample_weights=(labels != 1).double(), progress=False)
    assert not (torch.cat(seen) == 1).any()
    with pytest.raises(ValueError, match="sample_weights"):
        train_classifier(nn.Linear(3, 3), x, labels, x, labels, epochs=1, sample_weights=torch.ones(5), progress=False)


def test_subtype_scores_and_confusion():
    truth = torch.tensor([0, 0, 0, 1, 1, 2])
    pred = torch.tensor([0, 0, 1, 1, 1, 0])
    s = subtype_scores(pred, truth, ("a", "b", "c", "d"))
    assert s["confusion"] == [[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    assert s["accuracy"] == pytest.approx({"a": 2 / 3, "b": 1.0, "c": 0.0, "mean": 5 / 9})  # "d" never occurs
    assert balanced_subtypes(8) == [-1, -1, 0, 1, 2, 3, 4, 0]


def test_slice_maps_one_channel_per_slice():
    model = nn.Sequential(nn.Conv2d(9, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(4, 6)).double().eval()
    x = torch.rand(3, 9, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    target = torch.tensor([1, 2, 3])
    for method in ("gradcam", "integrated_gradients"):
        m = attribution_maps(model, x, target, method, layer="1", ig_steps=4)
        assert m.shape == (3, 1, 8, 8)
