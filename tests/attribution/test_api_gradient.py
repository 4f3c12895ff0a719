"""The public API end to end with the `gradient` method, against autograd and Captum."""

import pytest
import torch

import medlens
from medlens.core.hooks import count_hooks
from medlens.errors import InputError, TargetError, UnknownNameError
from tests.conftest import make_input, make_model


def test_methods_lists_gradient():
    assert "gradient" in medlens.methods()


def test_gradient_equals_autograd(spatial_dims):
    model, x = make_model(spatial_dims), make_input(spatial_dims)
    attr = medlens.explain(model, x, target=[0, 2, 1], method="gradient")
    xr = x.clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(model(xr)[[0, 1, 2], [0, 2, 1]].sum(), xr)
    torch.testing.assert_close(attr.values, ref, rtol=1e-12, atol=1e-12)
    assert attr.values.shape == x.shape and attr.target.tolist() == [0, 2, 1]
    assert attr.method == "gradient" and attr.params == {"abs": False} and attr.seconds >= 0


@pytest.mark.parametrize("abs_", [False, True])
def test_gradient_equals_captum_saliency(spatial_dims, abs_):
    captum_attr = pytest.importorskip("captum.attr")
    model, x = make_model(spatial_dims), make_input(spatial_dims)
    ours = medlens.explain(model, x, target=1, method="gradient", abs=abs_).values
    theirs = captum_attr.Saliency(model).attribute(x, target=1, abs=abs_)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-10)


def test_explain_restores_training_flags_and_leaves_no_hooks():
    model, x = make_model(2), make_input(2)
    model.train()
    before = count_hooks(model)
    medlens.explain(model, x, method="gradient", batch_size=1)
    assert model.training and all(m.training for m in model.modules())
    assert count_hooks(model) == before
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"method": "nope"}, UnknownNameError, "unknown method 'nope'"),
        ({"target": 7}, TargetError, "out of range"),
        ({"bogus": 1}, UnknownNameError, "no option 'bogus'"),
    ],
)
def test_bad_calls(kwargs, error, message):
    model, x = make_model(2), make_input(2)
    with pytest.raises(error, match=message):
        medlens.explain(model, x, **kwargs)


def test_bad_inputs():
    model = make_model(2)
    x = make_input(2)
    x[0, 0, 3, 3] = float("nan")
    with pytest.raises(InputError, match="NaN"):
        medlens.explain(model, x)
    with pytest.raises(InputError, match="does not fit the model"):
        medlens.explain(model, torch.randn(2, 1, 30, 30, dtype=torch.float64))
    with pytest.raises(InputError, match="batch, channels"):
        medlens.explain(model, torch.randn(24, 24))
    with pytest.raises(InputError, match="torch.Tensor"):
        medlens.explain(model, [[1.0]])


def test_shape_mismatch_without_declared_shape():
    model = make_model(2)
    model.input_shape = None
    with pytest.raises(InputError, match="does not fit the model"):
        medlens.explain(model, torch.randn(2, 3, 24, 24, dtype=torch.float64))


@pytest.mark.parametrize("method", ["gradient", "grad_x_input", "gradcam"])
def test_an_explicit_target_costs_no_extra_pass(method):
    model, x = make_model(2), make_input(2)
    rows = []
    handle = model.register_forward_pre_hook(lambda _m, args: rows.append(len(args[0])))
    try:
        medlens.explain(model, x, target=1, method=method)
        # each input evaluated once: the method's own pass; the checks and the chunk sizing ride on it
        assert sum(rows) == len(x)
        rows.clear()
        found = medlens.explain(model, x, target=None, method=method)
        assert sum(rows) == len(x)  # the predicted class is read from that same pass
        rows.clear()
        medlens.explain(model, x, target=1, method="integrated_gradients", n_steps=2)
        given = sum(rows)
        rows.clear()
        medlens.explain(model, x, target=None, method="integrated_gradients", n_steps=2)
        assert sum(rows) == given + len(x)  # a method that perturbs needs the predicted class first
    finally:
        handle.remove()
    predicted = model(x).argmax(1)
    assert torch.equal(found.target, predicted)
    assert torch.equal(found.values, medlens.explain(model, x, target=predicted, method=method).values)


def test_the_predicted_class_read_in_the_pass_holds_across_chunks():
    """Chunked (batch_size=2 over 5 inputs), every row's class is recorded from its own chunk."""
    from medlens.core.targets import PredictedTarget

    model, x = make_model(2), make_input(2, batch=5)
    found = medlens.explain(model, x, method="gradient", batch_size=2)
    assert torch.equal(found.target, model(x).argmax(1))
    target = PredictedTarget(3)
    with pytest.raises(RuntimeError, match="has not run on every sample"):
        target.class_indices()


def test_deferred_checks_still_name_the_problem():
    from medlens.errors import TargetError

    model = make_model(2)
    with pytest.raises(TargetError, match="target 7 is out of range: the model has 3 output"):
        medlens.explain(model, make_input(2), target=7)
    with pytest.raises(TargetError, match="target -1 is out of range"):
        medlens.explain(model, make_input(2), target=[0, -1, 2])
    with pytest.raises(TargetError, match="one score per sample"):
        medlens.explain(model, make_input(2), target=lambda out: out.sum())


def test_a_callable_target_may_reduce_outputs_of_any_shape():
    class Dense(torch.nn.Module):  # a segmentation-like output (B, K, H, W)
        def forward(self, x):
            return torch.cat([x, 2 * x], 1)

    x = make_input(2)
    attr = medlens.explain(Dense(), x, target=lambda out: out[:, 1].sum((1, 2)), method="gradient")
    torch.testing.assert_close(attr.values, torch.full_like(x, 2.0))
    assert attr.target.tolist() == [-1] * len(x)
