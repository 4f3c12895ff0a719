"""Concept autoencoder (Qi and Li 2017): recovery of known factors, fidelity, concept saliency."""

import pytest
import torch
from torch import nn

import medlens
from medlens.core.hooks import count_hooks
from medlens.errors import InputError
from medlens.selfexplain.concepts import (
    ConceptModel,
    ConceptScore,
    concept_importance,
    concept_saliency,
    evaluate_concepts,
    fidelity,
    fit_autoencoder,
    learn_concepts,
)
from tests.conftest import make_input, make_model


def factor_data(n=1000, d=24, k=4, seed=0):
    """Features built from k independent, sparse, non-negative factors, and a linear head."""
    gen = torch.Generator().manual_seed(seed)
    z = -torch.log1p(-torch.rand(n, k, generator=gen)) * (torch.rand(n, k, generator=gen) < 0.4)
    mixing = torch.randn(d, k, generator=gen)
    features = z @ mixing.T + 0.01 * torch.randn(n, d, generator=gen)
    head = nn.Linear(d, 3)
    with torch.no_grad():
        head.weight.copy_(0.3 * torch.randn(3, d, generator=gen))
        head.bias.zero_()
    return z, features, head


def correlation(a, b):
    a = (a - a.mean(0)) / a.std(0).clamp_min(1e-12)
    b = (b - b.mean(0)) / b.std(0).clamp_min(1e-12)
    return a.T @ b / (len(a) - 1)


@pytest.mark.parametrize("through_model", [True, False], ids=["model-head", "linear-head"])
def test_concepts_recover_known_independent_factors(through_model):
    z, features, head = factor_data()
    with torch.no_grad():
        logits = head(features)
    ae, history = fit_autoencoder(features, logits, k=4, classifier=head if through_model else None, epochs=300,
                                  batch_size=250, seed=0)
    corr = correlation(z, ae.encode(features).detach())  # (factors, concepts)
    best = corr.max(dim=1)
    assert (best.values > 0.95).all(), corr
    assert sorted(best.indices.tolist()) == [0, 1, 2, 3]  # one concept per factor
    assert history[-1]["reconstruction"] < 0.02
    fid = fidelity(ae, features, logits, head if through_model else None)
    # the head's classes are nearly tied on many rows, so agreement is the noisier measure here
    assert fid.kl < 0.01 and fid.reconstruction > 0.98 and fid.agreement > 0.75, fid
    assert all(p.requires_grad for p in head.parameters())  # the model's head is left as it was


def test_a_dense_unconstrained_code_would_not_pass_the_recovery_check():
    # the check above can fail: a random rotation of the true factors mixes them
    z, _, _ = factor_data()
    rotation, _ = torch.linalg.qr(torch.randn(4, 4, generator=torch.Generator().manual_seed(1)))
    assert not (correlation(z, z @ rotation).max(dim=1).values > 0.95).all()


def test_concept_prediction_is_linear_in_the_concepts_with_the_reported_weights():
    z, features, head = factor_data(n=300)
    with torch.no_grad():
        logits = head(features)
    for classifier in (head, None):
        ae, _ = fit_autoencoder(features, logits, k=3, classifier=classifier, epochs=5)
        c = torch.rand(7, 3, generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            delta = ae.predict(c, classifier) - ae.predict(torch.zeros(1, 3), classifier)
        torch.testing.assert_close(delta, c @ ae.logit_weights(classifier).T, atol=1e-5, rtol=1e-5)
        # importance: centred weights times the mean activation on the class's cases
        acts, preds = c, torch.tensor([0, 1, 1, 2, 0, 1, 1])
        imp = concept_importance(ae, acts, preds, 4, classifier)
        w = ae.logit_weights(classifier)
        w = w - w.mean(0)
        torch.testing.assert_close(imp[1], acts[preds == 1].mean(0) * w[1])
        assert torch.equal(imp[3], torch.zeros(3))  # never predicted


def small_trained_model(n=600, epochs=3):
    from medlens.data import load_dataset
    from medlens.models import CNN
    from medlens.models.training import train_classifier

    train, val = load_dataset("pneumoniamnist", "train"), load_dataset("pneumoniamnist", "val")
    torch.manual_seed(0)
    model = CNN(2, 1, 2, widths=(8, 16, 32), input_shape=(1, 28, 28))
    train_classifier(model, train.inputs[:n], train.labels[:n], val.inputs, val.labels, epochs=epochs, progress=False)
    return model, train, val


def test_fidelity_on_a_trained_chest_xray_model_is_high():
    model, train, val = small_trained_model()
    concepts = learn_concepts(model, train.inputs[:800], k=5, epochs=60)
    held_out = evaluate_concepts(model, concepts, val.inputs)
    assert concepts.fidelity.agreement > 0.95 and held_out.agreement > 0.95, (concepts.fidelity, held_out)
    assert held_out.kl < 0.05
    assert concepts.activations.shape == (800, 5) and (concepts.activations >= 0).all()
    assert 0.1 < concepts.fidelity.sparsity < 1.0  # sparse, but not dead
    top = concepts.top_activating(3)
    assert top.shape == (5, 3)
    for j in range(5):
        assert concepts.activations[top[j, 0], j] == concepts.activations[:, j].max()
    assert count_hooks(model) == 0


def test_concept_saliency_is_the_gradient_of_the_concept(spatial_dims):
    model = make_model(spatial_dims)
    x = make_input(spatial_dims, batch=6, seed=3)
    concepts = learn_concepts(model, x, k=3, epochs=3, head="linear")
    ae = concepts.autoencoder
    for j in range(3):
        attr = concept_saliency(model, ae, x, j)
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(ae.encode(model.embed(xg))[:, j].sum(), xg)
        torch.testing.assert_close(attr.values, grad)
        assert attr.target.tolist() == [-1] * len(x)  # a callable target: -1 for every sample
    # through a layer and any registered method
    attr = concept_saliency(model, ae, x, 0, method="gradient", abs=True)
    assert (attr.values >= 0).all()
    assert count_hooks(model) == 0


def test_concept_saliency_through_a_layer_capture():
    model = make_model(2)
    x = make_input(2, batch=4)
    layer = "features.block2.act"
    concepts = learn_concepts(model, x, k=2, epochs=3, layer=layer)
    assert concepts.classifier is None and concepts.autoencoder.head is not None  # "auto" -> linear head
    wrapper = ConceptModel(model, concepts.autoencoder, layer)
    attr = medlens.explain(wrapper, x, target=ConceptScore(1))
    xg = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(wrapper(xg)[:, 1].sum(), xg)
    torch.testing.assert_close(attr.values, grad)
    assert count_hooks(model) == 0


def test_save_and_load_the_autoencoder(tmp_path):
    from medlens.models import load_model, save_model

    _, features, head = factor_data(n=200)
    ae, _ = fit_autoencoder(features, head(features).detach(), k=3, epochs=2)
    loaded, meta = load_model(save_model(ae, tmp_path / "concepts.pt", {"k": 3}))
    assert meta == {"k": 3}
    torch.testing.assert_close(loaded(features), ae(features))


def test_bad_requests_name_the_problem():
    model = make_model(2)
    x = make_input(2, batch=4)
    with pytest.raises(InputError, match="k"):
        learn_concepts(model, x, k=0)
    with pytest.raises(InputError, match="head='model'"):
        learn_concepts(model, x, k=2, layer="features.block1.act", head="model")
    with pytest.raises(InputError, match="head must be"):
        learn_concepts(model, x, head="nonlinear")
    concepts = learn_concepts(model, x, k=2, epochs=1)
    with pytest.raises(InputError, match="concept must be an index in 0..1"):
        concept_saliency(model, concepts.autoencoder, x, 2)
    with pytest.raises(InputError, match="same N"):
        fit_autoencoder(torch.zeros(3, 4), torch.zeros(2, 2))


@pytest.mark.slow
def test_fidelity_on_the_demo_model_is_high():
    from medlens.data import load_dataset
    from medlens.app.recipes import train_on_dataset

    model, _ = train_on_dataset("pneumoniamnist", epochs=8, seed=0, progress=False)  # the demo's recipe
    train, test = load_dataset("pneumoniamnist", "train"), load_dataset("pneumoniamnist", "test")
    concepts = learn_concepts(model, train.inputs, k=5)
    held_out = evaluate_concepts(model, concepts, test.inputs)
    print(f"\nfitting: {concepts.fidelity}\nheld out: {held_out}")
    assert concepts.fidelity.agreement > 0.97 and held_out.agreement > 0.97
    assert held_out.kl < 0.01 and held_out.reconstruction > 0.9
