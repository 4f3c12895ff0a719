"""LRP through attention computed inside functions: ``nn.MultiheadAttention`` (so
``nn.TransformerEncoder``, whose feed-forward calls ``F.gelu``) and
``F.scaled_dot_product_attention`` in a model's own forward. Their probabilities are constants
and their projections get the epsilon rule, as MONAI's and medlens's attention modules get: with
LRP-0 and no biases the map sums to the logit."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import medlens
from medlens.attribution.transformer.attention_maps import explicit_sdpa

D = 16


class Encoder(nn.Module):
    """A 1D patch embedding (an ECG transformer's) and a bias-free ``nn.TransformerEncoder``."""

    def __init__(self, batch_first: bool, norm_first: bool, pool: str = "mean") -> None:
        super().__init__()
        torch.manual_seed(0)
        self.batch_first, self.pool = batch_first, pool
        self.patch = nn.Conv1d(1, D, 10, stride=10, bias=False)
        layer = nn.TransformerEncoderLayer(D, 2, 32, dropout=0.0, activation="gelu", bias=False,
                                           batch_first=batch_first, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(D, 3, bias=False)

    def forward(self, x):
        tokens = self.patch(x).transpose(1, 2)
        padding = torch.zeros(tokens.shape[:2], dtype=torch.bool)
        padding[:, -2:] = True  # the last two tokens are padding
        h = self.encoder(tokens if self.batch_first else tokens.transpose(0, 1), src_key_padding_mask=padding)
        h = h if self.batch_first else h.transpose(0, 1)
        return self.head(h.mean(1) if self.pool == "mean" else h[:, 0])


class BertBlock(nn.Module):
    """Post-norm block calling its attention with the default ``need_weights=True``."""

    def __init__(self) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(D, 2, bias=False, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(D, bias=False), nn.LayerNorm(D, bias=False)
        self.mlp = nn.Sequential(nn.Linear(D, 32, bias=False), nn.GELU(), nn.Linear(32, D, bias=False))

    def forward(self, x):
        x = self.norm1(x + self.attn(x, x, x)[0])
        return self.norm2(x + self.mlp(x))


class SdpaAttention(nn.Module):
    """A hand-written ViT layer calling ``F.scaled_dot_product_attention`` (no weights exposed)."""

    def __init__(self, causal: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.causal = causal
        self.patch = nn.Conv2d(1, D, 8, stride=8, bias=False)
        self.qkv, self.out = nn.Linear(D, 3 * D, bias=False), nn.Linear(D, D, bias=False)
        self.head = nn.Linear(D, 2, bias=False)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2)
        q, k, v = self.qkv(t).reshape(len(t), -1, 3, 2, D // 2).permute(2, 0, 3, 1, 4)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal).transpose(1, 2).reshape(len(t), -1, D)
        return self.head(F.gelu(t + self.out(a)).mean(1))


def _ratios(model, x):
    model = model.double().eval()
    logits = model(x).detach()
    target = logits.argmax(1)
    values = medlens.explain(model, x, target=target, method="lrp", composite="epsilon", epsilon=1e-12).values
    return values.flatten(1).sum(1) / logits[torch.arange(len(x)), target]


def _signal(n=2, length=100):
    return torch.randn(n, 1, length, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("norm_first", [True, False])
def test_a_transformer_encoder_conserves_the_logit(batch_first, norm_first):
    # the softmax's gradient, MultiheadAttention's functional projections and F.gelu's gradient
    # each broke it (0.18 to 18 times the logit)
    ratios = _ratios(Encoder(batch_first, norm_first), _signal())
    torch.testing.assert_close(ratios, torch.ones_like(ratios), rtol=1e-6, atol=1e-6)


def test_a_multihead_attention_called_with_its_weights_conserves_the_logit():
    torch.manual_seed(0)
    model = nn.Sequential(BertBlock(), BertBlock(), nn.Flatten(), nn.Linear(5 * D, 3, bias=False))
    x = torch.randn(2, 5, D, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ratios = _ratios(model, x)
    torch.testing.assert_close(ratios, torch.ones_like(ratios), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("causal", [False, True])
def test_scaled_dot_product_attention_conserves_the_logit(causal):
    x = torch.randn(2, 1, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    ratios = _ratios(SdpaAttention(causal), x)
    torch.testing.assert_close(ratios, torch.ones_like(ratios), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("mask", ["none", "bool", "float", "causal"])
def test_explicit_sdpa_computes_what_torch_computes(mask):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 5, 4, generator=g, dtype=torch.float64) for _ in range(3))
    options = {"bool": {"attn_mask": torch.rand(5, 5, generator=g) > 0.3}, "float": {"attn_mask": torch.randn(5, 5, generator=g, dtype=torch.float64)},
               "causal": {"is_causal": True}, "none": {"scale": 0.3}}[mask]
    if mask == "bool":
        options["attn_mask"][:, 0] = True  # no row without a position
    seen = []
    got = explicit_sdpa(lambda p: seen.append(p) or p, q, k, v, **options)
    torch.testing.assert_close(got, F.scaled_dot_product_attention(q, k, v, **options))
    assert seen[0].shape == (2, 3, 5, 5)
