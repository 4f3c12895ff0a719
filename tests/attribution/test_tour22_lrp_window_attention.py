"""LRP through MONAI's Swin ``WindowAttention`` (SwinUNETR's): its softmax module's output is
attention, held constant like every other attention's; a softmax outside attention modules (a
model's last layer) keeps its gradient."""

import warnings

import pytest
import torch
from torch import nn

import medlens
from tests.attribution.lrp_models import zero_biases


class Windowed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            swin = pytest.importorskip("monai.networks.nets.swin_unetr")
        torch.manual_seed(0)
        self.embed = nn.Conv2d(1, 8, 4, stride=4, bias=False)
        self.attention = swin.WindowAttention(8, 2, (4, 4), qkv_bias=False)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        tokens = self.embed(x).flatten(2).transpose(1, 2)  # one 4x4 window of 16 tokens
        return self.head(tokens + self.attention(tokens, None)).mean(1)


def test_window_attention_conserves_the_logit():
    model = zero_biases(Windowed()).double().eval()
    x = torch.randn(2, 1, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    logits = model(x).detach()
    values = medlens.explain(model, x, target=[0, 2], method="lrp", composite="epsilon", epsilon=1e-12).values
    ratios = values.flatten(1).sum(1) / logits[[0, 1], [0, 2]]
    # the softmax's gradient path gave 1.3 and 0.5 times the logit
    torch.testing.assert_close(ratios, torch.ones_like(ratios), rtol=1e-6, atol=1e-6)


class SumPool(nn.Module):
    """Tokens ``(B, N, D)`` through a dense layer, summed over the tokens, then a head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.mlp = nn.Sequential(nn.Linear(4, 6, bias=False), nn.ReLU())
        self.head = nn.Linear(6, 2, bias=False)

    def forward(self, x):
        return self.head(self.mlp(x).sum(1))


def test_tokens_summed_into_one_vector_conserve_the_logit():
    model = SumPool().double().eval()
    x = torch.randn(2, 5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    values = medlens.explain(model, x, target=1, method="lrp", composite="epsilon", epsilon=1e-12).values
    # the sum's gradient gave each of the 5 tokens the whole relevance
    torch.testing.assert_close(values.flatten(1).sum(1), model(x)[:, 1].detach(), rtol=1e-6, atol=1e-9)


def test_a_softmax_at_the_output_is_not_taken_for_attention():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3), nn.Softmax(-1))
    values = medlens.explain(model.eval(), torch.randn(2, 1, 8), target=0, method="lrp").values
    assert values.abs().sum() > 0
