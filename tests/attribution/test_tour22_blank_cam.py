"""A Grad-CAM map that is zero everywhere (the class's weighted channels negative at every
position: a trained ViT's token layer gave 3 of 6 PneumoniaMNIST cases such a map) comes with a
note saying so, instead of a blank overlay read as "nothing here"."""

import torch
from torch import nn

import medlens


def _model(sign: float) -> nn.Module:
    conv = nn.Conv2d(1, 2, 3, padding=1)
    head = nn.Linear(2, 2)
    with torch.no_grad():
        conv.weight.fill_(0.1)
        conv.bias.zero_()
        head.weight.fill_(sign)
        head.bias.zero_()
    return nn.Sequential(conv, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), head).eval()


def test_a_map_zero_everywhere_is_noted():
    attr = medlens.explain(_model(-1.0), torch.rand(3, 1, 12, 12), target=0, method="gradcam")
    assert float(attr.values.abs().max()) == 0
    assert "zero everywhere for 3 of 3 input(s)" in attr.extras["note"]


def test_a_map_with_evidence_has_no_note():
    attr = medlens.explain(_model(1.0), torch.rand(3, 1, 12, 12), target=0, method="gradcam")
    assert float(attr.values.max()) > 0 and "note" not in attr.extras
