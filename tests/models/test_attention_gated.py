"""Attention-gated classifier: gates in [0, 1] equal to the paper's formula, 1D/2D/3D shapes,
gradients into every gate, uniform gates reduce the pool to a plain mean, file round trip,
``medlens train --arch attention-gated``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medlens.core.hooks import count_hooks
from medlens.errors import InputError
from medlens.models.attention_gated import AttentionGatedCNN, gate_modules, replaced_gates
from medlens.models.io import load_model, save_model

SHAPES = {1: (2, 48), 2: (1, 32, 32), 3: (1, 16, 16, 16)}


def _model(spatial_dims, seed=0, num_classes=3):
    torch.manual_seed(seed)
    return AttentionGatedCNN(spatial_dims, SHAPES[spatial_dims][0], num_classes, widths=(4, 6, 8, 8)).double().eval()


def _x(spatial_dims, b=2, seed=1):
    return torch.randn(b, *SHAPES[spatial_dims], generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("spatial_dims", [1, 2, 3])
def test_gate_shapes_and_range(spatial_dims):
    model, x = _model(spatial_dims), _x(spatial_dims)
    logits, alphas = model.forward_with_gates(x)
    assert logits.shape == (2, 3) and torch.equal(logits, model(x))
    assert len(alphas) == 2
    for alpha, scale in zip(alphas, (2, 4)):  # blocks 1 and 2: halved once and twice
        assert alpha.shape == (2, 1, *[s // scale for s in x.shape[2:]])
        assert ((alpha >= 0) & (alpha <= 1)).all()
    # saturating weights keep the coefficients inside [0, 1]
    with torch.no_grad():
        for gate in gate_modules(model):
            gate.psi.weight.mul_(1e4)
    for alpha in model.forward_with_gates(x)[1]:
        assert ((alpha >= 0) & (alpha <= 1)).all() and (alpha.min() < 1e-3 or alpha.max() > 1 - 1e-3)


def test_gate_equals_the_additive_attention_formula():
    model, x = _model(2), _x(2)
    feats, h = [], x
    for block in model.blocks:
        h = block(h)
        feats.append(h)
    gate = model.gates[0]
    g_up = F.interpolate(F.conv2d(feats[-1], gate.phi.weight, gate.phi.bias), size=feats[1].shape[2:],
                         mode="bilinear", align_corners=False)
    q = F.conv2d(F.relu(F.conv2d(feats[1], gate.theta.weight) + g_up), gate.psi.weight, gate.psi.bias)
    expected = 1 / (1 + torch.exp(-q))
    torch.testing.assert_close(model.forward_with_gates(x)[1][0], expected)
    # the pooled vector is the attention-weighted mean of the gated features
    a = expected
    pooled = (a * feats[1]).sum((2, 3)) / a.sum((2, 3))
    torch.testing.assert_close(model.embed(x)[:, :6], pooled)


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_gradients_flow_through_the_gates(spatial_dims):
    model, x = _model(spatial_dims), _x(spatial_dims).requires_grad_(True)
    model.train()
    logits, alphas = model.forward_with_gates(x)
    (logits[:, 1].sum() + sum(a.sum() for a in alphas)).backward()
    for gate in model.gates:
        for p in (gate.theta.weight, gate.phi.weight, gate.psi.weight):
            assert p.grad is not None and p.grad.abs().sum() > 0
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_uniform_gates_reduce_to_global_average_pooling():
    model, x = _model(2), _x(2)
    feats, h = [], x
    for block in model.blocks:
        h = block(h)
        feats.append(h)
    plain = torch.cat([feats[i].mean((2, 3)) for i in model.gated] + [feats[-1].mean((2, 3))], 1)
    with replaced_gates(model, lambda a: torch.full_like(a, 0.3)):
        logits, alphas = model.forward_with_gates(x)
        assert all(torch.all(a == 0.3) for a in alphas)
    assert count_hooks(model) == 0
    torch.testing.assert_close(logits, model.classifier(plain))
    assert not torch.allclose(logits, model(x))  # the learnt gates do change the decision path


def test_config_errors_and_file_round_trip(tmp_path):
    with pytest.raises(InputError, match="3 blocks"):
        AttentionGatedCNN(2, 1, 2, widths=(4, 8))
    with pytest.raises(InputError, match="gated"):
        AttentionGatedCNN(2, 1, 2, widths=(4, 8, 8), gated=[2])
    model, x = _model(3), _x(3)
    path = save_model(model, tmp_path / "ag.pt", meta={"input_shape": list(SHAPES[3])})
    loaded, meta = load_model(path)
    assert type(loaded) is AttentionGatedCNN and meta["input_shape"] == list(SHAPES[3])
    torch.testing.assert_close(loaded(x), model(x))


def test_cli_train_attention_gated(tmp_path):
    from medlens.cli import main
    from medlens.data.synthetic.lesions import write_lesion_benchmark

    data = write_lesion_benchmark(tmp_path / "les.npz", size=32, n_train=16, n_val=8, n_test=8)
    out = tmp_path / "ag.pt"
    assert main(["train", "--data", str(data), "--arch", "attention-gated", "--out", str(out), "--epochs", "1", "--quiet"]) == 0
    model, meta = load_model(out)
    assert model.arch == "attention-gated" and meta["input_shape"] == [1, 32, 32]
