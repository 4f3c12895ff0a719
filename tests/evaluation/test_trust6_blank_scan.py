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


def test_a_radiograph_at_a_tenth_of_its_contrast_is_nearly_blank(chest_xray_reference):
    model, reference, test = chest_xray_reference
    for x in test[:5]:
        faint = x.mean() + (x - x.mean()) * 0.1  # the distances called these 0.35 to 0.42 of their threshold
        found = familiarity(model, faint[None], reference)
        assert found.unlike is True and found.reasons[0].startswith("it is nearly blank")


def test_a_grey_image_with_faint_noise_is_nearly_blank(chest_xray_reference):
    model, reference, _ = chest_xray_reference
    noisy = 0.5 + 0.005 * torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert familiarity(model, noisy, reference).unlike is True


def test_the_least_varying_training_case_sets_the_bar(chest_xray_reference):
    model, reference, _ = chest_xray_reference
    train = load_dataset("pneumoniamnist", "train").inputs[:300]
    least = train.flatten(1).std(1).min().item()
    assert reference["least_std"] == pytest.approx([least])
    x = load_dataset("pneumoniamnist", "test").inputs[:1]
    centred = x - x.mean()
    for share, nearly in ((0.45, True), (0.55, False)):
        y = 0.5 + centred * (share * least / centred.std().item())
        assert any(r.startswith("it is nearly blank") for r in familiarity(model, y, reference).reasons) is nearly


def test_a_reference_written_before_least_std_is_read_as_before(chest_xray_reference):
    model, reference, _ = chest_xray_reference
    older = {k: v for k, v in reference.items() if k != "least_std"}
    noisy = 0.5 + 0.005 * torch.randn(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    assert not any("nearly blank" in r for r in familiarity(model, noisy, older).reasons)
