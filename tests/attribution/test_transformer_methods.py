"""Attention rollout and Chefer's gradient-weighted attention against slow re-implementations of
the papers' recursions, on small transformers with random weights (float64)."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

import medlens
from medlens.attribution.registry import get_method, method_names
from medlens.attribution.transformer.attention_maps import capture_attention
from medlens.core.engine import Budget
from medlens.core.hooks import count_hooks
from medlens.core.targets import Target
from medlens.errors import InputError, MedlensError
from medlens.models import ViT
from tests.attribution.test_model_outputs import TinyViT

NEW = ("attention_rollout", "transformer_attribution")


def _vit(pool: str = "cls", dims: int = 2, size: int = 32) -> ViT:
    torch.manual_seed(0)
    model = ViT(dims, 1, 3, input_shape=(1,) + (size,) * dims, patch=8, dim=16, depth=3, heads=2, pool=pool)
    with torch.no_grad():  # non-trivial class token
        if model.cls_token is not None:
            model.cls_token.normal_()
    return model.double().eval()


def _manual_forward(model: ViT, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The ViT's forward written out, keeping every block's attention probabilities in the graph."""
    t = model.patch_embed(x).flatten(2).transpose(1, 2)
    if model.cls_token is not None:
        t = torch.cat([model.cls_token.expand(len(t), -1, -1), t], dim=1)
    t = t + model.pos
    probs_per_layer = []
    for block in model.blocks:
        attn = block.attn
        b, n, d = t.shape
        h = attn.heads
        qkv = attn.qkv(block.norm1(t)).reshape(b, n, 3, h, d // h)
        q, k, v = qkv[:, :, 0].transpose(1, 2), qkv[:, :, 1].transpose(1, 2), qkv[:, :, 2].transpose(1, 2)
        probs = torch.softmax(q @ k.transpose(-2, -1) / (d // h) ** 0.5, dim=-1)
        if probs.requires_grad:
            probs.retain_grad()
        probs_per_layer.append(probs)
        t = t + attn.proj((probs @ v).transpose(1, 2).reshape(b, n, d))
        t = t + block.mlp(block.norm2(t))
    t = model.norm(t)
    return model.head(t[:, 0] if model.cls_token is not None else t.mean(1)), probs_per_layer


def _naive_rollout(maps: list[torch.Tensor], sample: int, cls: bool) -> torch.Tensor:
    """Abnar and Zuidema: per layer, heads averaged, identity added, rows renormalised; the
    joint attention multiplied from the first layer up; class row (or mean row) over patches."""
    n = maps[0].shape[-1]
    joint = torch.eye(n, dtype=torch.float64)
    for layer in range(len(maps)):
        heads = maps[layer][sample]
        avg = sum(heads[h] for h in range(heads.shape[0])) / heads.shape[0]
        a = avg + torch.eye(n, dtype=torch.float64)
        for i in range(n):
            a[i] = a[i] / a[i].sum()
        joint = a @ joint
    return joint[0, 1:] if cls else joint.mean(0)


def _naive_chefer(maps, grads, sample: int, cls: bool) -> torch.Tensor:
    """Chefer et al. 2021, eq. (5)-(6): R = I; per layer A_bar = E_h[(grad * A)^+]; R += A_bar R."""
    n = maps[0].shape[-1]
    relevance = torch.eye(n, dtype=torch.float64)
    for layer in range(len(maps)):
        a, g = maps[layer][sample], grads[layer][sample]
        cam = torch.zeros(n, n, dtype=torch.float64)
        for h in range(a.shape[0]):
            cam += torch.clamp(g[h] * a[h], min=0)
        cam /= a.shape[0]
        relevance = relevance + cam @ relevance
    return relevance[0, 1:] if cls else relevance.mean(0)


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_rollout_equals_the_papers_recursion(pool):
    model = _vit(pool)
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = medlens.explain(model, x, 0, "attention_rollout", upsample=False).values
    with torch.no_grad():
        logits, maps = _manual_forward(model, x)
    assert torch.allclose(logits, model(x), atol=1e-12)  # the written-out forward is the model's
    for s in range(2):
        expected = _naive_rollout(maps, s, pool == "cls").reshape(1, 4, 4)
        assert (got[s] - expected).abs().max() < 1e-6
    assert got.shape == (2, 1, 4, 4) and count_hooks(model) == 0


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_transformer_attribution_equals_a_naive_per_layer_implementation(pool):
    model = _vit(pool)
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    targets = [2, 0]
    got = medlens.explain(model, x, targets, "transformer_attribution", upsample=False).values
    for s, c in enumerate(targets):
        logits, maps = _manual_forward(model, x[s : s + 1])
        logits[0, c].backward()
        expected = _naive_chefer([m.detach() for m in maps], [m.grad for m in maps], 0, pool == "cls")
        assert (got[s, 0] - expected.reshape(4, 4)).abs().max() < 1e-6
    assert count_hooks(model) == 0


def test_multihead_attention_is_read_per_head_and_the_model_is_unchanged():
    """nn.TransformerEncoderLayer: the explicit forward used while reading gives the model's
    outputs, and its per-head probabilities are those nn.MultiheadAttention itself returns."""
    torch.manual_seed(0)
    model = TinyViT().double().eval()
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    with torch.no_grad():
        expected_out = model(x)
        tokens = model.embed(x).flatten(2).transpose(1, 2)
        mha = model.encoder.self_attn
        expected = mha(tokens, tokens, tokens, need_weights=True, average_attn_weights=False)[1]
        with capture_attention(model) as record:
            out = model(x)
    assert torch.allclose(out, expected_out, atol=1e-12)
    assert len(record.maps) == 1 and torch.allclose(record.maps[0], expected, atol=1e-12)
    assert "forward" not in vars(mha) and torch.backends.mha.get_fastpath_enabled()
    # rollout of one layer without a class token: mean row of (A_bar + I) / 2
    got = medlens.explain(model, x, 0, "attention_rollout", upsample=False).values
    eye = torch.eye(16, dtype=torch.float64)
    assert torch.allclose(got[:, 0].flatten(1), ((expected.mean(1) + eye) / 2).mean(1), atol=1e-12)


def test_methods_are_model_specific_and_refuse_models_without_attention():
    assert not set(NEW) & set(method_names())
    assert set(NEW) <= set(method_names(model_specific=True))
    for name in NEW:
        info = get_method(name)
        assert info.requires == "attention layers" and info.summary and info.reference
    from tests.conftest import make_input, make_model

    with pytest.raises(InputError, match="no attention layers") as err:
        medlens.explain(make_model(2), make_input(2), 0, "attention_rollout")
    assert "\n" not in str(err.value)


def test_torchscript_transformers_are_refused_in_one_line():
    model = _vit().float()
    scripted = torch.jit.trace(model, torch.zeros(1, 1, 32, 32))
    for name in NEW:
        with pytest.raises(MedlensError, match="TorchScript") as err:
            medlens.explain(scripted, torch.zeros(1, 1, 32, 32), 0, name)
        assert "\n" not in str(err.value)


class _Fused(nn.Module):
    def __init__(self, model, fuse):
        super().__init__()
        self.model, self.fuse, self._calls = model, fuse, itertools.count(1)  # chunks may run side by side

    def forward(self, x):
        if next(self._calls) == self.fuse:
            raise RuntimeError("model failed mid-way")
        return self.model(x)


@pytest.mark.parametrize("name", NEW)
@pytest.mark.parametrize("inner", ["vit", "mha"])
def test_failing_model_leaves_no_hook_and_no_replaced_forward(name, inner):
    torch.manual_seed(0)
    base = _vit().float() if inner == "vit" else TinyViT().eval()
    for fuse in (1, 2):
        model = _Fused(base, fuse)
        with pytest.raises((RuntimeError, InputError), match="failed mid-way"):
            get_method(name).fn(model, torch.randn(3, 1, 32, 32), Target(torch.tensor([0, 1, 2])),
                                budget=Budget(batch_size=1))
        assert count_hooks(model) == 0 and not any("forward" in vars(m) for m in base.modules())
        assert torch.backends.mha.get_fastpath_enabled()


def test_per_sample_results_do_not_depend_on_chunking():
    model = _vit().float()
    x = torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(4))
    for name in NEW:
        whole = medlens.explain(model, x, [0, 1, 2], name, batch_size=3).values
        alone = medlens.explain(model, x[1:2], 1, name, batch_size=1).values
        torch.testing.assert_close(whole[1:2], alone, rtol=1e-5, atol=1e-7)


def test_3d_vit_and_a_grid_map():
    model = _vit(dims=3, size=16).float()
    x = torch.randn(2, 1, 16, 16, 16)
    for name in NEW:
        a = medlens.explain(model, x, 1, name)
        assert a.values.shape == (2, 1, 16, 16, 16) and torch.isfinite(a.values).all() and (a.values >= 0).all()
        assert medlens.explain(model, x, 1, name, upsample=False).values.shape == (2, 1, 2, 2, 2)
