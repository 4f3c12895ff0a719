"""Models whose forward returns more than the scores: a tuple (MONAI's ViT returns (logits,
hidden states)), a mapping with "logits", and a transformer whose late layers are tokens."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import medlens
from medlens.core.hooks import count_hooks
from medlens.errors import InputError

SMALL = {"integrated_gradients": {"n_steps": 4}, "smoothgrad": {"n_samples": 3}, "rise": {"n_masks": 16},
         "occlusion": {"window": 8, "stride": 8}}


class TinyViT(nn.Module):
    """Patch embedding (a strided convolution), a transformer layer over the tokens, mean pooling."""

    def __init__(self, returns: str = "tensor") -> None:
        super().__init__()
        self.returns = returns
        self.embed = nn.Conv2d(1, 16, kernel_size=8, stride=8)
        self.encoder = nn.TransformerEncoderLayer(16, nhead=2, dim_feedforward=32, dropout=0.0, batch_first=True)
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        tokens = self.encoder(self.embed(x).flatten(2).transpose(1, 2))  # (B, N, D)
        logits = self.head(tokens.mean(dim=1))
        if self.returns == "tuple":
            return logits, [tokens]
        if self.returns == "dict":
            return {"logits": logits, "hidden": tokens}
        if self.returns == "text":
            return "not scores"
        return logits


@pytest.mark.parametrize("returns", ["tuple", "dict"])
def test_every_method_explains_the_scores_inside_a_tuple_or_mapping(returns):
    torch.manual_seed(0)
    plain = TinyViT().eval()
    wrapped = TinyViT(returns).eval()
    wrapped.load_state_dict(plain.state_dict())
    x = torch.randn(2, 1, 32, 32, generator=torch.Generator().manual_seed(1))
    for method in medlens.methods():
        a = medlens.explain(wrapped, x, [0, 2], method, **SMALL.get(method, {}))
        b = medlens.explain(plain, x, [0, 2], method, **SMALL.get(method, {}))
        assert a.values.shape[-2:] == (32, 32) and torch.isfinite(a.values).all(), method
        assert torch.allclose(a.values, b.values, atol=1e-6), method
        assert count_hooks(wrapped) == 0


def test_an_output_without_scores_is_one_line():
    with pytest.raises(InputError, match="the model returned str") as err:
        medlens.explain(TinyViT("text").eval(), torch.randn(1, 1, 32, 32), 0, "gradient")
    assert "\n" not in str(err.value)
