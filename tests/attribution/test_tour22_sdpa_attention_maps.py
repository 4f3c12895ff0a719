"""Attention rollout and Chefer et al.'s relevance of a ViT whose attention is
``F.scaled_dot_product_attention`` (no weights exposed): read by computing it explicitly, and
equal to the closed form on the same model written with its softmax in the open."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import medlens
from medlens.errors import InputError

D, HEADS = 8, 2


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.qkv, self.proj = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.mlp = nn.Sequential(nn.LayerNorm(D), nn.Linear(D, D), nn.GELU())
        self.kept: list[torch.Tensor] = []  # the open variant's probabilities

    def forward(self, x, open_softmax: bool = False):
        q, k, v = self.qkv(x).reshape(len(x), -1, 3, HEADS, D // HEADS).permute(2, 0, 3, 1, 4)
        if open_softmax:
            p = ((q @ k.transpose(-2, -1)) * (D // HEADS) ** -0.5).softmax(-1)
            p.retain_grad()
            self.kept.append(p)
            a = p @ v
        else:
            a = F.scaled_dot_product_attention(q, k, v)
        x = x + self.proj(a.transpose(1, 2).reshape(len(x), -1, D))
        return x + self.mlp(x)


class TinyViT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = nn.Conv2d(1, D, 4, stride=4)
        self.cls = nn.Parameter(torch.randn(1, 1, D))
        self.blocks = nn.ModuleList([Block(), Block()])
        self.head = nn.Linear(D, 3)
        self.open_softmax = False

    def forward(self, x):
        t = torch.cat([self.cls.expand(len(x), -1, -1), self.embed(x).flatten(2).transpose(1, 2)], 1)
        for block in self.blocks:
            t = block(t, self.open_softmax)
        return self.head(t[:, 0])


def _open_pass(model, x, target):
    """The maps and their gradients, read by hand from the open-softmax variant."""
    model.open_softmax = True
    out = model(x)
    out[torch.arange(len(x)), target].sum().backward()
    model.open_softmax = False
    return [b.kept[0].detach() for b in model.blocks], [b.kept[0].grad for b in model.blocks]


def test_rollout_of_sdpa_attention_is_the_closed_form():
    model, x = TinyViT().double().eval(), torch.randn(2, 1, 16, 16, dtype=torch.float64)
    (a1, a2), _ = _open_pass(model, x, [0, 0])
    eye = torch.eye(17, dtype=torch.float64)
    joint = (0.5 * a2.mean(1) + 0.5 * eye) @ (0.5 * a1.mean(1) + 0.5 * eye)  # rows of A sum to one
    got = medlens.explain(model, x, method="attention_rollout", upsample=False).values
    torch.testing.assert_close(got, joint[:, 0, 1:].reshape(2, 1, 4, 4))


def test_chefer_relevance_of_sdpa_attention_is_the_papers():
    model, x = TinyViT().double().eval(), torch.randn(2, 1, 16, 16, dtype=torch.float64)
    maps, grads = _open_pass(model, x, [1, 2])
    relevance = torch.eye(17, dtype=torch.float64).expand(2, 17, 17)
    for a, g in zip(maps, grads):  # R <- R + E_h[(grad * A)^+] R
        relevance = relevance + (g * a).clamp(min=0).mean(1) @ relevance
    got = medlens.explain(model, x, target=[1, 2], method="transformer_attribution", upsample=False).values
    torch.testing.assert_close(got, relevance[:, 0, 1:].reshape(2, 1, 4, 4))


def test_a_cnn_is_still_refused_before_any_pass():
    cnn = nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.LazyLinear(2))
    with pytest.raises(InputError, match="no attention layers medlens can read"):
        medlens.explain(cnn, torch.randn(1, 1, 8, 8), method="attention_rollout")
