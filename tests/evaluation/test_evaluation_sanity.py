"""Cascading randomisation sanity check (Adebayo et al. 2018)."""

from __future__ import annotations

import torch

from medlens.core.hooks import count_hooks
from medlens.evaluation import (
    SANITY_THRESHOLD,
    cascading_randomisation,
    edge_attribution,
    randomisable_layers,
    randomised_copy,
)
from tests.conftest import make_input, make_model


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_gradient_passes_and_model_is_untouched(spatial_dims):
    model, x = make_model(spatial_dims), make_input(spatial_dims, batch=4)
    before = _state(model)
    res = cascading_randomisation(model, x, method="gradient", seed=0)
    assert res.layers == randomisable_layers(model)
    assert res.layers[0] == "classifier"  # from the top
    assert res.spearman.shape == res.ssim.shape == (len(res.layers), 4)
    assert res.passed
    assert float(res.spearman[-1].mean()) < SANITY_THRESHOLD
    assert float(res.ssim[-1].mean()) < 0.5
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert count_hooks(model) == 0
    assert not model.training


def test_explanations_that_ignore_the_model_fail(spatial_dims):
    model, x = make_model(spatial_dims), make_input(spatial_dims, batch=3)
    for explainer in (lambda _m, xs, _t: xs, lambda _m, xs, _t: edge_attribution(xs)):
        res = cascading_randomisation(model, x, method=explainer, seed=0)
        assert not res.passed
        torch.testing.assert_close(res.spearman, torch.ones_like(res.spearman))
        torch.testing.assert_close(res.ssim, torch.ones_like(res.ssim))


def test_single_stage_equals_last_cascade_stage():
    model, x = make_model(2), make_input(2, batch=3)
    cascade = cascading_randomisation(model, x, method="gradient", seed=4)
    once = cascading_randomisation(model, x, method="gradient", seed=4, each_layer=False)
    assert once.layers == [f"all {len(cascade.layers)} layers"]
    torch.testing.assert_close(once.spearman[0], cascade.spearman[-1])
    # and the same as explaining randomised_copy directly
    import medlens
    from medlens.evaluation import spearman

    target = model(x).argmax(1)
    original = medlens.explain(model, x, target=target).values.abs().sum(1)
    randomised = medlens.explain(randomised_copy(model, seed=4), x, target=target).values.abs().sum(1)
    torch.testing.assert_close(spearman(original, randomised), once.spearman[0])


def test_randomised_copy_changes_only_the_named_layers():
    model = make_model(2)
    clone = randomised_copy(model, ["classifier"], seed=1)
    for (name, p), (_, q) in zip(model.named_parameters(), clone.named_parameters()):
        assert torch.equal(p, q) != name.startswith("classifier")
    # weights keep their scale
    assert abs(float(clone.classifier.weight.detach().std()) / float(model.classifier.weight.detach().std()) - 1) < 0.5
    a, b = randomised_copy(model, seed=2), randomised_copy(model, seed=2)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
