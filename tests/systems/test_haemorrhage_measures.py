"""The haemorrhage system's in-distribution measures against known answers: the blood-free twin
swap of one window on a model that reads only that window, and the per-volume score of slice
maps stacked into a volume on a planted case."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from medlens.data.synthetic.head_ct import make_head_ct
from medlens.errors import InputError
from medlens.evaluation.localisation import mass_in_mask, pointing_game
from medlens.systems import haemorrhage as H


class ReadsOneWindow(nn.Module):
    """Logits ``(0, a * mean of window w's channels - b)``: only window ``w`` matters."""

    def __init__(self, window: int, n_windows: int = 3, a: float = 40.0, b: float = 0.0):
        super().__init__()
        self.window, self.n_windows, self.a, self.b = window, n_windows, a, b

    def forward(self, x):
        s = self.a * x[:, self.window :: self.n_windows].mean((1, 2, 3)) - self.b
        return torch.stack([torch.zeros_like(s), s], 1)


@pytest.fixture(scope="module")
def twins():
    kinds = ["subdural", "epidural"]
    blood = make_head_ct(2, subtypes=kinds, seed=21)
    free = make_head_ct(2, subtypes=kinds, seed=21, haemorrhage=False)
    a, b = H.slice_data(blood, context=1), H.slice_data(free, context=1)
    pos = torch.nonzero(a.labels > 0)[:, 0][:6]
    return a.inputs[pos].double(), b.inputs[pos].double()


def test_twin_swap_finds_the_window_the_model_reads(twins):
    x, twin = twins
    assert not torch.equal(x, twin)
    for w in range(3):
        model = ReadsOneWindow(w)
        base = model(x).mean()  # centre the logit so probabilities are not saturated
        model.b = float(base)
        drop = H.window_swap(model, x, torch.ones(len(x), dtype=torch.long), 3, twin, batch_size=4)
        assert drop.shape == (len(x), 3)
        others = [v for v in range(3) if v != w]
        assert torch.all(drop[:, others] == 0)  # swapping a window the model never reads changes nothing
        # closed form: p(x) - p(x with window w from the twin), sigmoid of the logit
        swapped = x.clone()
        swapped[:, w::3] = twin[:, w::3]
        expected = torch.sigmoid(model(x)[:, 1]) - torch.sigmoid(model(swapped)[:, 1])
        torch.testing.assert_close(drop[:, w], expected.double())
        # blood is denser than the parenchyma or CSF it replaces, and every window is monotone in
        # HU: removing it lowers the window the model reads, so the probability falls
        assert (drop[:, w] > 0).all()


def test_window_swap_refuses_what_does_not_fit(twins):
    x, twin = twins
    with pytest.raises(InputError, match="windows"):
        H.window_swap(ReadsOneWindow(0), x[:, :8], torch.ones(len(x), dtype=torch.long), 3, twin[:, :8])
    with pytest.raises(InputError, match="does not fit"):
        H.window_swap(ReadsOneWindow(0), x, torch.ones(len(x), dtype=torch.long), 3, twin[:, :3])


def test_ablation_is_a_swap_with_a_flat_channel(twins):
    x, _ = twins
    fill = torch.tensor([0.2, 0.3, 0.4], dtype=torch.float64)
    target = torch.ones(len(x), dtype=torch.long)
    flat = fill[torch.arange(9) % 3].reshape(1, 9, 1, 1)
    model = ReadsOneWindow(1, a=10.0)
    torch.testing.assert_close(H.window_ablation(model, x, target, 3, fill), H.window_swap(model, x, target, 3, flat))


def test_stacked_volume_map_shape_and_score_on_a_planted_case():
    depth, h, w = 6, 8, 8
    masks = torch.zeros(2, depth, h, w, dtype=torch.bool)
    masks[0, 2:4, 3:5, 3:5] = True  # case 0: blood on slices 2 and 3
    masks[1, 4, 0:2, 6:8] = True  # case 1: blood on slice 4
    # slice maps of both cases, interleaved: 0.1 everywhere, 1 on the blood, 2 at one voxel of it
    case = torch.tensor([0] * depth + [1] * depth)
    slices = torch.cat([torch.arange(depth), torch.arange(depth)])
    maps = (0.1 + masks.float()).reshape(2 * depth, 1, h, w)
    maps[3, 0, 3, 3] = 2.0  # case 0, slice 3
    maps[depth + 4, 0, 1, 7] = 2.0  # case 1, slice 4
    # slices are given in scrambled order and only those of interest: the stack puts them back
    order = torch.randperm(2 * depth, generator=torch.Generator().manual_seed(0))
    vol = H.stacked_volume_maps(maps[order], case[order], slices[order], [0, 1], depth)
    assert vol.shape == (2, 1, depth, h, w)
    assert vol[0].max() == 1.0 and vol[0, 0, 3, 3, 3] == 1.0  # rescaled by the case's maximum
    assert pointing_game(vol, masks).tolist() == [1.0, 1.0]
    inside0 = 7 * 1.1 + 2.0  # 8 blood voxels, one of them 2
    total0 = inside0 + 0.1 * (depth * h * w - 8)
    inside1 = 3 * 1.1 + 2.0
    total1 = inside1 + 0.1 * (depth * h * w - 4)
    torch.testing.assert_close(mass_in_mask(vol, masks), torch.tensor([inside0 / total0, inside1 / total1],
                                                                       dtype=torch.float64))
    # a case whose maps are given for some slices only: the others stay empty
    part = H.stacked_volume_maps(maps[:2], case[:2], slices[:2], [0], depth)
    assert part[0, 0, 2:].abs().sum() == 0 and part[0, 0, :2].abs().sum() > 0
