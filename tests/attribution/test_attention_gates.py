"""``attention_gates``: the model's own gate coefficients, upsampled; per-gate, mean and max;
batch-independent; no hook left; refused for models without gates; not in the general list."""

from __future__ import annotations

import pytest
import torch

import medlens
from medlens.attribution.registry import get_method
from medlens.core.engine import Budget
from medlens.core.hooks import count_hooks
from medlens.core.resize import upsample_to
from medlens.core.targets import Target
from medlens.errors import InputError
from medlens.models.attention_gated import AttentionGatedCNN
from tests.conftest import make_model

SHAPES = {1: (1, 40), 2: (2, 32, 32), 3: (1, 16, 16, 16)}


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
def test_maps_are_the_upsampled_gates(spatial_dims):
    torch.manual_seed(0)
    model = AttentionGatedCNN(spatial_dims, SHAPES[spatial_dims][0], 2, widths=(4, 6, 8, 8)).double().eval()
    x = torch.randn(3, *SHAPES[spatial_dims], dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    before = count_hooks(model)
    attr = medlens.explain(model, x, target=1, method="attention_gates", batch_size=2)
    with torch.no_grad():
        alphas = model.forward_with_gates(x)[1]
    ups = [upsample_to(a, x.shape[2:]) for a in alphas]
    torch.testing.assert_close(attr.values, (ups[0] + ups[1]) / 2)
    assert attr.values.shape == (3, 1, *x.shape[2:]) and attr.values.dtype == x.dtype
    assert ((attr.values >= 0) & (attr.values <= 1)).all()
    fn = get_method("attention_gates").fn
    torch.testing.assert_close(fn(model, x, Target(torch.tensor([0, 1, 0])), gate=1), ups[1])
    torch.testing.assert_close(fn(model, x, Target(torch.tensor([0, 1, 0])), gate="max"), torch.maximum(*ups))
    # class-agnostic, and each sample's map does not depend on the rest of the batch
    other = medlens.explain(model, x[1:2], target=0, method="attention_gates").values
    torch.testing.assert_close(other, attr.values[1:2])
    assert count_hooks(model) == before == 0


def test_refusals_and_listing():
    cnn = make_model(2)
    x = torch.randn(1, 1, 24, 24, dtype=torch.float64)
    with pytest.raises(InputError, match="attention gates"):
        medlens.explain(cnn, x, target=0, method="attention_gates")
    model = AttentionGatedCNN(2, 1, 2, widths=(4, 6, 8)).eval()
    with pytest.raises(InputError, match="out of range"):
        medlens.explain(model, torch.randn(1, 1, 16, 16), target=0, method="attention_gates", gate=5)
    assert "attention_gates" not in medlens.methods()
    assert "attention_gates" in medlens.methods(model_specific=True)
    assert get_method("attention_gates").requires == "attention gates"


class Fused(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        self.model(x)
        raise RuntimeError("model failed mid-way")


def test_failing_model_leaves_no_hook():
    inner = AttentionGatedCNN(2, 1, 2, widths=(4, 6, 8)).eval()
    model = Fused(inner)
    with pytest.raises((RuntimeError, InputError), match="failed mid-way"):
        get_method("attention_gates").fn(model, torch.randn(2, 1, 16, 16), Target(torch.tensor([0, 1])),
                                         budget=Budget(batch_size=1))
    assert count_hooks(model) == 0
