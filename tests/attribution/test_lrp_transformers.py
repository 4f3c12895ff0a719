"""LRP through transformers (attention probabilities as constants, layer norms by the LN rule)
and every LRP composite and transformer method at defaults on MONAI's networks."""

from __future__ import annotations

import warnings

import pytest
import torch

import medlens
from medlens.attribution.lrp import COMPOSITES, Constant, composite_named
from medlens.attribution.lrp.rules import LayerNorm
from medlens.core.hooks import count_hooks
from medlens.core.targets import ReducedOutput
from medlens.models import ViT
from tests.attribution.lrp_models import zero_biases

TRANSFORMER_METHODS = ("attention_rollout", "transformer_attribution")


def _vit(pool: str = "mean", stem: str = "patch") -> ViT:
    torch.manual_seed(0)
    model = ViT(2, 1, 3, input_shape=(1, 32, 32), patch=8, dim=16, depth=2, heads=2, pool=pool, stem=stem)
    return model.double().eval()


def test_attention_probabilities_are_constants_and_layer_norms_get_the_ln_rule():
    model = _vit()
    rules = {name: rule for name, _, rule in composite_named("epsilon-plus").assign(model)}
    assert isinstance(rules["blocks.0.attn.softmax"], Constant) and isinstance(rules["blocks.1.attn.softmax"], Constant)
    assert isinstance(rules["blocks.0.norm1"], LayerNorm) and isinstance(rules["norm"], LayerNorm)


def test_epsilon_lrp_conserves_the_logit_through_attention():
    # with the probabilities as constants (the values by the epsilon rule), layer norms' 1/sigma constant,
    # residual sums split in proportion and zero biases, every step conserves relevance; the
    # softmax's gradient path would not (checked: the plain gradient times input does not)
    model, x = zero_biases(_vit("mean")), torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(1),
                                                       dtype=torch.float64)
    target = [0, 1, 2]
    attr = medlens.explain(model, x, target=target, method="lrp", composite="epsilon", epsilon=1e-12).values
    logits = model(x)[torch.arange(3), target].detach()
    error = ((attr.flatten(1).sum(1) - logits).abs() / logits.abs()).max().item()
    assert error <= 1e-4
    grad_x = medlens.explain(model, x, target=target, method="gradient").values * x
    assert ((grad_x.flatten(1).sum(1) - logits).abs() / logits.abs()).max().item() > 1e-2
    assert count_hooks(model) == 0


def test_lrp_on_a_vit_does_not_depend_on_the_batch():
    # a batch of one must be explained as the same sample in a larger batch (a parameter added
    # to the tokens, the position embedding, is never split as a residual branch)
    model = _vit("cls", stem="conv")
    x = torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    whole = medlens.explain(model, x, target=[0, 1, 2], method="lrp").values
    single = torch.cat([medlens.explain(model, x[i:i + 1], target=i, method="lrp").values for i in range(3)])
    torch.testing.assert_close(whole, single, rtol=1e-9, atol=1e-12)



def _nets():
    pytest.importorskip("einops")  # MONAI's attention block needs it
    return pytest.importorskip("monai.networks.nets")


def _monai(name: str):
    """(model, input) of each MONAI network at a small size (random weights, nothing downloaded)."""
    nets = _nets()
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "densenet121-2d":
            return nets.DenseNet121(spatial_dims=2, in_channels=1, out_channels=3).eval(), (1, 1, 32, 32)
        if name == "resnet18-3d":
            return nets.resnet18(spatial_dims=3, n_input_channels=1, num_classes=3).eval(), (1, 1, 16, 16, 16)
        if name in ("vit-2d", "vit-3d"):
            dims = 2 if name == "vit-2d" else 3
            size = 32 if dims == 2 else 16
            return nets.ViT(1, (size,) * dims, (8,) * dims, hidden_size=32, mlp_dim=64, num_layers=2, num_heads=4,
                            classification=True, num_classes=3, spatial_dims=dims).eval(), (1, 1) + (size,) * dims
        net = nets.UNETR(1, 2, (32,) * 3, feature_size=4, hidden_size=32, mlp_dim=64, num_heads=4, spatial_dims=3).eval()
        mask = torch.zeros((32,) * 3)
        mask[8:16, 8:16, 8:16] = 1
        return ReducedOutput(net, channel=1, mask=mask), (1, 1, 32, 32, 32)


@pytest.mark.parametrize("name", ["densenet121-2d", "resnet18-3d", "vit-2d", "vit-3d", "unetr-3d-region"])
def test_every_lrp_composite_and_transformer_method_runs_at_defaults(name):
    model, shape = _monai(name)
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(3))
    methods = [("lrp", {"composite": c}) for c in COMPOSITES]
    if "vit" in name or "unetr" in name:
        methods += [(m, {}) for m in TRANSFORMER_METHODS]
    for method, options in methods:
        values = medlens.explain(model, x, target=0, method=method, **options).values
        assert values.shape[0] == 1 and values.shape[2:] == x.shape[2:], (method, options)
        assert torch.isfinite(values).all() and values.abs().sum() > 0, (method, options)
        assert count_hooks(model) == 0, (method, options)
