"""``load_model_file`` reads a file's ``meta["multilabel"]`` (or the ``multi_label`` switch) and wraps
the model in ``MultiLabel``; :func:`model_probabilities` is the one place the shown probabilities
come from (a finding's own sigmoid for such a model); a wrapped model's layers keep their names."""

from __future__ import annotations

import pytest
import torch

from medlens import MultiLabel
from medlens.app.inputs import load_model_file
from medlens.core.hooks import resolve_layer
from medlens.core.targets import model_probabilities, multilabel_of
from medlens.models import CNN, save_model


@pytest.fixture
def cnn():
    torch.manual_seed(0)
    return CNN(2, 1, 4, widths=(4, 8), input_shape=(1, 24, 24)).eval()


@pytest.mark.parametrize("meta, flag, wrapped", [({}, False, False), ({"multilabel": True}, False, True),
                                                 ({}, True, True), ({"multilabel": False}, False, False)])
def test_the_file_or_the_switch_makes_it_multilabel(cnn, tmp_path, meta, flag, wrapped):
    path = save_model(cnn, tmp_path / "m.pt", {"input_shape": [1, 24, 24], **meta})
    model, read = load_model_file(str(path), flag)
    assert (multilabel_of(model) is not None) == wrapped and bool(read.get("multilabel")) == wrapped
    x = torch.rand(3, 1, 24, 24)
    logits = cnn(x).detach()
    expected = torch.sigmoid(logits) if wrapped else torch.softmax(logits, 1)
    torch.testing.assert_close(model_probabilities(model(x).detach(), model), expected)
    assert model.input_shape == (1, 24, 24) and model.embed(x).shape == (3, 8)  # read through the wrapper


def test_a_model_that_outputs_probabilities_is_shown_as_it_is(cnn):
    wrapped = MultiLabel(torch.nn.Sequential(cnn, torch.nn.Sigmoid()), outputs="probabilities")
    p = torch.rand(2, 4)
    assert model_probabilities(p, wrapped) is p


def test_a_wrapped_models_layers_keep_their_names(cnn):
    assert resolve_layer(MultiLabel(cnn), "features.block2.conv") is cnn.features.block2.conv


def test_a_multilabel_model_travels_to_ray_workers_as_one(cnn):
    from medlens.audit.engines import model_from_bytes, model_to_bytes

    back = model_from_bytes(model_to_bytes(MultiLabel(cnn), {"input_shape": [1, 24, 24]}))
    assert multilabel_of(back) is not None
    x = torch.rand(2, 1, 24, 24)
    torch.testing.assert_close(back(x), cnn(x))
