"""The haemorrhage pipeline's pieces against closed forms: windows through the recipe, 2.5D
channel order, window shares, window ablation on a model that reads one window, case pooling."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medlens.data.synthetic.head_ct import make_head_ct
from medlens.data.recipe import WINDOW_PRESETS
from medlens.errors import InputError
from medlens.systems import haemorrhage as H


@pytest.fixture(scope="module")
def cases():
    return make_head_ct(2, subtypes=["subdural", "none"], seed=11)


def _window(hu, name):
    c, w = WINDOW_PRESETS[name]
    return ((hu - (c - w / 2)) / w).clamp(0, 1)


def test_windows_and_context_channels(cases):
    hu = cases.volumes[0]
    w = H.windowed(hu, cases.spacing, H.haemorrhage_recipe())
    assert w.shape == (3, 32, 64, 64)
    for k, name in enumerate(H.WINDOWS):
        torch.testing.assert_close(w[k], _window(hu, name))
    s = H.stack_context(w, 2)
    assert s.shape == (32, 15, 64, 64)
    for z in (0, 1, 17, 31):
        for o in range(-2, 3):
            for k in range(3):
                zz = min(max(z + o, 0), 31)
                assert torch.equal(s[z, (o + 2) * 3 + k], w[k, zz])


def test_slice_data_labels_and_masks(cases):
    data = H.slice_data(cases, context=1, min_voxels=3)
    assert data.inputs.shape == (64, 9, 64, 64) and data.n_windows == 3
    counts = (cases.haemorrhage > 0).flatten(2).sum(-1).flatten()
    assert torch.equal(data.labels > 0, counts >= 3)
    assert set(data.labels[:32].tolist()) == {0, 2} and set(data.labels[32:].tolist()) == {0}  # subdural = class 2
    assert torch.equal(data.masks.flatten(1).any(1), data.labels > 0)
    # the middle channels are the slice itself
    torch.testing.assert_close(data.inputs[40, 3], _window(cases.volumes[1, 8], "brain"))
    x, y = H.volume_data(cases)
    assert x.shape == (2, 3, 32, 64, 64) and y.tolist() == [2, 0]


def test_window_shares_closed_form():
    a = torch.zeros(2, 6, 4, 4)
    a[0, 0], a[0, 3] = 1.0, -1.0  # window 0 in both context slices
    a[0, 1] = 2.0  # window 1
    a[1, 2] = 5.0
    s = H.window_shares(a, 3)
    torch.testing.assert_close(s, torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]))
    with pytest.raises(InputError, match="windows"):
        H.window_shares(torch.zeros(1, 4, 2, 2), 3)


class OneWindow(nn.Module):
    """Logits (0, sum of window-1 channels): only the subdural window matters."""

    def forward(self, x):
        s = x[:, 1::3].sum((1, 2, 3))
        return torch.stack([torch.zeros_like(s), s], 1)


def test_window_ablation_finds_the_window_the_model_reads():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(3, 9, 4, 4, generator=gen, dtype=torch.float64) * 0.1
    fill = torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64)
    drop = H.window_ablation(OneWindow(), x, torch.tensor([1, 1, 0]), 3, fill, batch_size=2)
    p = torch.sigmoid(x[:, 1::3].sum((1, 2, 3)))
    torch.testing.assert_close(drop[:, 1], torch.stack([p[0] - 0.5, p[1] - 0.5, (1 - p[2]) - 0.5]))
    assert torch.all(drop[:, [0, 2]] == 0)


def test_case_probabilities_known_answer():
    probs = torch.tensor([[0.9, 0.1, 0, 0, 0, 0], [0.2, 0.0, 0.8, 0, 0, 0], [0.6, 0.0, 0.4, 0, 0, 0],
                          [0.95, 0, 0, 0.05, 0, 0]], dtype=torch.float64)
    out = H.case_probabilities(probs, torch.tensor([0, 0, 0, 1]), 2)
    assert out[0, 0] == pytest.approx(0.2) and out[1, 0] == pytest.approx(0.95)
    # subtype mass 0.1 (epidural) and 0.8 + 0.4 (subdural) of 1.3, times 1 - p(none) = 0.8
    assert out[0, 1] == pytest.approx(0.8 * 0.1 / 1.3) and out[0, 2] == pytest.approx(0.8 * 1.2 / 1.3)
    torch.testing.assert_close(out.sum(1), torch.ones(2, dtype=torch.float64))
    assert H.subtype_prediction(out).tolist() == [1, 2]
    torch.testing.assert_close(H.detection_score(out), torch.tensor([0.8, 0.05], dtype=torch.float64))


def test_volume_map_places_slices():
    maps = torch.stack([torch.full((1, 2, 2), 2.0), torch.full((1, 2, 2), 4.0)])
    v = H.volume_map(maps, torch.tensor([1, 3]), 5)
    assert v.shape == (5, 2, 2) and v[3].max() == 1.0 and v[1].max() == 0.5 and v[0].abs().sum() == 0
