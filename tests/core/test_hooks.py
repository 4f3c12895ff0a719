import pytest
import torch

from medlens.core.hooks import capture, count_hooks, last_conv_layer, resolve_layer
from medlens.errors import UnknownNameError
from tests.conftest import make_input, make_model


def test_capture_activation_and_gradient():
    model, x = make_model(2), make_input(2)
    with capture(model, "features.block2.act", gradients=True) as rec:
        xr = x.clone().requires_grad_(True)
        out = model(xr)
        out[:, 1].sum().backward()
    assert rec.activation.shape[:2] == (3, 6) and rec.gradient.shape == rec.activation.shape
    assert count_hooks(model) == 0


def test_hooks_removed_when_block_raises():
    model = make_model(2)
    with pytest.raises(RuntimeError):
        with capture(model, "features.block1.conv"):
            raise RuntimeError("boom")
    assert count_hooks(model) == 0


def test_resolve_layer_errors_and_default():
    model = make_model(3)
    assert last_conv_layer(model) is model.features.block3.conv
    assert resolve_layer(model, model.classifier) is model.classifier
    with pytest.raises(UnknownNameError, match="no layer named 'nope'"):
        resolve_layer(model, "nope")
    with pytest.raises(UnknownNameError, match="not part of the model"):
        resolve_layer(model, torch.nn.Conv2d(1, 1, 1))
