"""Jain and Wallace's tests on a small vision transformer: patch pooling, the attention
permutation test (known answers), and the summary the attention verdict reads."""

from __future__ import annotations

import torch

from medlens.attribution.transformer.tokens import TokenGrid
from medlens.core.hooks import count_hooks
from medlens.evaluation.attention import verdict
from medlens.evaluation.transformer_attention import patch_sums, permutation_test, transformer_attention_faithfulness
from medlens.models import ViT


def _vit() -> ViT:
    torch.manual_seed(0)
    return ViT(2, 1, 3, input_shape=(1, 32, 32), patch=8, dim=16, depth=2, heads=2).eval()


def test_patch_sums_follow_the_token_order():
    values = torch.zeros(1, 2, 16, 24)
    values[0, 0, 8:16, 16:24] = 1.0  # patch (1, 2) of a 2x3 grid, token 1 * 3 + 2
    values[0, 1, 0, 0] = 2.0
    got = patch_sums(values, TokenGrid(1, (2, 3)))
    assert torch.equal(got, torch.tensor([[2.0, 0, 0, 0, 0, 64.0]]))


def test_permuting_uniform_attention_changes_nothing_and_real_attention_something():
    model = _vit()
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    tvd, flipped = permutation_test(model, x, n_permutations=4, seed=3)
    assert tvd.shape == flipped.shape == (2, 4) and (tvd > 1e-6).all()
    # the same draws whatever the chunking
    again, _ = permutation_test(model, x, n_permutations=4, seed=3, batch_size=1)
    torch.testing.assert_close(tvd, again, rtol=1e-5, atol=1e-7)
    with torch.no_grad():
        for block in model.blocks:
            block.attn.qkv.weight[: 2 * 16].zero_()  # q = k = bias only: every row uniform
            block.attn.qkv.bias[: 2 * 16].zero_()
    tvd, flipped = permutation_test(model, x, n_permutations=3)
    assert tvd.abs().max() < 1e-6 and not flipped.any() and count_hooks(model) == 0


def test_faithfulness_summary_feeds_the_attention_verdict():
    model = _vit()
    x = torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(2))
    masks = torch.zeros(3, 1, 32, 32)
    masks[:, :, :16, :16] = 1
    result = transformer_attention_faithfulness(model, x, masks=masks, n_permutations=3)
    assert result.rollout.shape == result.gradient.shape == result.leave_one_out.shape == (3, 16)
    assert torch.allclose(result.mask_share, torch.full((3,), 0.25, dtype=torch.float64))
    summary = result.summary()
    assert -1 <= summary["tau_gradient_mean"] <= 1 and summary["permutation_tvd_median"] >= 0
    level, sentences = verdict(summary)
    assert level in ("usable", "caution", "unreliable") and sentences
