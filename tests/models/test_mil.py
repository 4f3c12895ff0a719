"""Attention MIL: patches cut as a naive loop does, permutation-invariant pool, attention summing
to 1 over a bag, and after training on a toy task the weight on the one evidence patch."""

from __future__ import annotations

import pytest
import torch

import medlens
from medlens.errors import InputError
from medlens.models.io import load_model, save_model
from medlens.models.mil import PatchAttentionMIL, from_patches, to_patches, train_mil


def test_patches_match_a_naive_loop_2d_and_3d():
    x = torch.randn(2, 3, 12, 8)
    p = to_patches(x, 4)
    assert p.shape == (2, 6, 3, 4, 4)
    k = 0
    for gy in range(3):
        for gx in range(2):
            assert torch.equal(p[:, k], x[:, :, gy * 4 : gy * 4 + 4, gx * 4 : gx * 4 + 4])
            k += 1
    v = torch.randn(1, 1, 8, 4, 4)
    q = to_patches(v, 4)
    assert q.shape == (1, 2, 1, 4, 4, 4) and torch.equal(q[0, 1], v[0, :, 4:])
    values = torch.arange(6.0)[None]
    m = from_patches(values, (3, 2), 4)
    assert m.shape == (1, 1, 12, 8) and m[0, 0, 5, 6] == 3.0  # row 1, column 1 -> patch 3
    with pytest.raises(InputError, match="patches"):
        to_patches(torch.zeros(1, 1, 10, 8), 4)


@pytest.mark.parametrize("gated", [True, False])
@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_pool_is_permutation_invariant_and_attention_sums_to_one(gated, spatial_dims):
    torch.manual_seed(0)
    model = PatchAttentionMIL(spatial_dims, 1, 3, patch=8, widths=(4, 8), embed_dim=16, attention_dim=8,
                              gated=gated).double().eval()
    shape = (2, 1, 16, 24) if spatial_dims == 2 else (2, 1, 16, 8, 16)
    x = torch.randn(*shape, dtype=torch.float64)
    patches = to_patches(x, 8)
    logits, a = model.forward_bag(patches)
    torch.testing.assert_close(a.sum(1), torch.ones(2, dtype=torch.float64))
    assert (a > 0).all()
    perm = torch.randperm(patches.shape[1])
    logits_p, a_p = model.forward_bag(patches[:, perm])
    torch.testing.assert_close(logits_p, logits)
    torch.testing.assert_close(a_p, a[:, perm])
    torch.testing.assert_close(model(x), logits)
    # any bag size: a bag of 3 patches also sums to 1
    torch.testing.assert_close(model.forward_bag(patches[:, :3])[1].sum(1), torch.ones(2, dtype=torch.float64))


def _toy(n, gen):
    """16x16-pixel images of 4x4 patches of 8 pixels (16 patches); positives have one bright cross."""
    x = 0.2 * torch.rand(n, 1, 32, 32, generator=gen)
    y = (torch.arange(n) % 2).long()
    where = torch.randint(16, (n,), generator=gen)
    for i in range(n):
        gy, gx = divmod(int(where[i]), 4)
        if y[i]:
            x[i, 0, gy * 8 + 2 : gy * 8 + 6, gx * 8 + 3 : gx * 8 + 5] += 0.8
            x[i, 0, gy * 8 + 3 : gy * 8 + 5, gx * 8 + 2 : gx * 8 + 6] += 0.8
    return x, y, where


def test_one_evidence_patch_gets_the_weight_after_training():
    gen = torch.Generator().manual_seed(0)
    x, y, _ = _toy(96, gen)
    torch.manual_seed(0)
    model = PatchAttentionMIL(2, 1, 2, patch=8, widths=(8, 16), embed_dim=16, attention_dim=8)
    train_mil(model, x, y, epochs=12, batch_size=16, lr=3e-3, seed=0)
    xt, yt, where = _toy(40, torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits, a = model.forward_with_attention(xt)
    pos = yt == 1
    assert (logits.argmax(1) == yt).float().mean() >= 0.9
    hit = a[pos].argmax(1) == where[pos]
    assert hit.float().mean() >= 0.9
    assert a[pos].gather(1, where[pos][:, None]).mean() > 0.5  # most of the bag's weight, 1/16 by chance
    # the registered method paints the same weights over the patches
    attr = medlens.explain(model, xt[:4], target=1, method="patch_attention")
    torch.testing.assert_close(attr.values, from_patches(a[:4], (4, 4), 8))
    per = medlens.explain(model, xt[:4], target=1, method="patch_attention", per_patch=True).values
    torch.testing.assert_close(per, a[:4])


def test_round_trip_and_refusal(tmp_path):
    model = PatchAttentionMIL(2, 1, 2, patch=8, widths=(4, 8), embed_dim=8, attention_dim=4).eval()
    path = save_model(model, tmp_path / "mil.pt")
    loaded, _ = load_model(path)
    x = torch.rand(2, 1, 16, 16)
    torch.testing.assert_close(loaded(x), model(x))
    with pytest.raises(InputError, match="too small"):
        PatchAttentionMIL(2, 1, 2, patch=2, widths=(4, 8, 16))
    with pytest.raises(InputError, match="patch attention"):
        medlens.explain(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2)), torch.rand(1, 1, 4, 4),
                        target=0, method="patch_attention")
