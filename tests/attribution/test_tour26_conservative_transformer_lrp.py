"""Conservative LRP through transformers (Ali et al., ICML 2022): attention probabilities held
constant and the values' relevance by the epsilon rule (each value its contribution's share),
layer norms with ``1/sigma`` held constant (relevance through the centring). With every bias,
class token and position embedding zero, LRP-0 returns the logit; the identity for layer norms
and ``P^T R`` for the values lost the relevance a zero class token was handed."""

import torch
import torch.nn.functional as F
from torch import nn

import medlens

D = 8


def _lrp0(model, x, target):
    return medlens.explain(model, x, target=target, method="lrp", composite="epsilon", epsilon=1e-12).values


def _ratio(model, x):
    out = model(x)
    out = (out[0] if isinstance(out, tuple) else out).detach()
    target = out.argmax(1)
    return _lrp0(model, x, target).flatten(1).sum(1) / out[torch.arange(len(x)), target]


def test_lrp0_on_a_monai_vit_with_zero_biases_and_class_token_returns_the_logit():
    from monai.networks.nets import ViT

    torch.manual_seed(0)
    model = ViT(in_channels=1, img_size=(16, 16), patch_size=(4, 4), hidden_size=D, mlp_dim=16, num_layers=2,
                num_heads=2, classification=True, num_classes=3, spatial_dims=2).double().eval()
    for name, p in model.named_parameters():
        if name.endswith("bias") or name == "cls_token" or "position" in name:
            p.data.zero_()
    x = torch.randn(2, 1, 16, 16, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    torch.testing.assert_close(_ratio(model, x), torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-5)


class _EncoderClassifier(nn.Module):
    """Patch embedding, a zero class token, a bias-free 2-layer ``nn.TransformerEncoder``."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.patch = nn.Conv1d(1, D, 5, stride=5, bias=False)
        self.cls = nn.Parameter(torch.zeros(1, 1, D))
        layer = nn.TransformerEncoderLayer(D, 2, 16, dropout=0.0, activation="gelu", bias=False, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(D, 2, bias=False)

    def forward(self, x):
        tokens = self.patch(x).transpose(1, 2)
        tokens = torch.cat([self.cls.expand(len(x), -1, -1), tokens], 1)
        return self.head(self.encoder(tokens)[:, 0])


def test_lrp0_on_a_transformer_encoder_with_a_zero_class_token_returns_the_logit():
    model = _EncoderClassifier().double().eval()
    x = torch.randn(2, 1, 40, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(_ratio(model, x), torch.ones(2, dtype=torch.float64), rtol=0, atol=1e-5)


class _OneHead(nn.Module):
    """One hand-written single-head attention (functional softmax) over ``(B, N, D)`` tokens."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.q, self.k, self.v, self.o = (nn.Linear(D, D, bias=False) for _ in range(4))
        self.head = nn.Linear(D, 2, bias=False)

    def forward(self, x):
        probs = (self.q(x) @ self.k(x).transpose(1, 2) * D**-0.5).softmax(-1)
        return self.head(self.o(probs @ self.v(x))[:, 0])


def test_a_single_head_attention_matches_the_hand_computed_rules():
    model = _OneHead().double().eval()
    x = torch.randn(2, 5, D, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    target = torch.tensor([0, 1])
    # by hand: epsilon rule R_j = sum_k a_j w_jk R_k / z_k on head, o, P @ v (P constant) and v
    wq, wk, wv, wo = (m.weight.detach() for m in (model.q, model.k, model.v, model.o))
    p = torch.softmax(x @ wq.T @ (x @ wk.T).transpose(1, 2) * D**-0.5, -1)
    v = x @ wv.T
    a = p @ v
    y0 = a[:, 0] @ wo.T
    logit = (y0 * model.head.weight.detach()[target]).sum(1)
    r_y0 = y0 * model.head.weight.detach()[target]                            # (B, D)
    r_a0 = a[:, 0] * ((r_y0 / y0) @ wo)                                       # (B, D)
    r_v = p[:, 0, :, None] * v * (r_a0 / a[:, 0])[:, None, :]                 # (B, N, D)
    r_x = x * ((r_v / v) @ wv)
    lrp = _lrp0(model, x, target)
    torch.testing.assert_close(r_x.flatten(1).sum(1), logit)
    torch.testing.assert_close(lrp, r_x, rtol=1e-6, atol=1e-9)


def test_the_values_get_relevance_by_their_contribution_in_sdpa():
    # the same block through F.scaled_dot_product_attention: the values by the epsilon rule too
    class Sdpa(_OneHead):
        def forward(self, x):
            a = F.scaled_dot_product_attention(self.q(x), self.k(x), self.v(x))
            return self.head(self.o(a)[:, 0])

    x = torch.randn(2, 5, D, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    plain, sdpa = _OneHead().double().eval(), Sdpa().double().eval()
    torch.testing.assert_close(_lrp0(sdpa, x, [0, 1]), _lrp0(plain, x, [0, 1]))


def test_the_layer_norm_rule_on_another_layer_is_refused_in_one_line():
    import pytest

    from medlens.errors import InputError

    with pytest.raises(InputError, match="layer_norm rule is for nn.LayerNorm layers; 'head' is a Linear"):
        _lrp_named(_OneHead().double(), {"head": "layer_norm"})


def _lrp_named(model, mapping):
    x = torch.randn(1, 5, D, dtype=torch.float64)
    return medlens.explain(model, x, target=0, method="lrp", composite=mapping).values
