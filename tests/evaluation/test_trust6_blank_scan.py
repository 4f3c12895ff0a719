"""A blank scan (one grey level everywhere) is never "like the training data".

Seen: ``medlens report`` with a chest X-ray CNN on a flat mid-grey 28 x 28 PNG said "This scan
resembles the model's training data": a flat image sits near the mean training image, so its
Mahalanobis distance (score 0.43 to 0.69 of the threshold) was below that of real radiographs.
"""

from __future__ import annotations

import pytest
import torch

from medlens.data import load_dataset
from medlens.evaluation.familiarity import familiarity, familiarity_reference
from medlens.models.cnn import CNN


@pytest.fixture(scope="module")
def chest_xray_reference():
    torch.manual_seed(0)
    model = CNN(2, 1, 2, input_shape=(1, 28, 28)).eval()
    train = load_dataset("pneumoniamnist", "train").inputs[:300]
    val = load_dataset("pneumoniamnist", "val").inputs
    return model, familiarity_reference(model, train, val), load_dataset("pneumoniamnist", "test").inputs[:20]


@pytest.mark.parametrize("level", [0.5, 0.8])
def test_a_flat_grey_image_is_unlike_chest_xrays(chest_xray_reference, level):
    model, reference, _ = chest_xray_reference
    found = familiarity(model, torch.full((1, 1, 28, 28), level), reference)
    assert found.unlike is True
    assert any(r.startswith("it is blank") for r in found.reasons)
    assert "unlike the cases the model was trained on" in found.sentence


def test_real_chest_xrays_are_not_called_blank(chest_xray_reference):
    model, reference, test = chest_xray_reference
    for x in test:
        assert not any("blank" in r for r in familiarity(model, x[None], reference).reasons)


def test_a_flat_line_is_unlike_varying_records():
    torch.manual_seed(0)
    model = CNN(1, 1, 2, input_shape=(1, 140)).eval()
    t = torch.linspace(0, 6.28, 140)
    train = torch.sin(t * torch.linspace(1, 3, 40)[:, None])[:, None]
    found = familiarity(model, torch.zeros(1, 1, 140), familiarity_reference(model, train[:30], train[30:]))
    assert found.unlike is True and found.reasons[0].startswith("it is a flat line")


def test_blank_training_data_do_not_make_a_blank_input_unlike():
    torch.manual_seed(0)
    model = CNN(2, 1, 2, input_shape=(1, 8, 8)).eval()
    blank = torch.zeros(6, 1, 8, 8)
    found = familiarity(model, torch.zeros(1, 1, 8, 8), familiarity_reference(model, blank[:4], blank[4:]))
    assert not any("blank" in r for r in found.reasons)


def test_without_any_reference_a_blank_scan_is_still_called_blank():
    torch.manual_seed(0)
    model = CNN(2, 1, 2, input_shape=(1, 28, 28)).eval()
    found = familiarity(model, torch.full((1, 1, 28, 28), 0.3), None)
    assert found.unlike is True  # before: "not available"
