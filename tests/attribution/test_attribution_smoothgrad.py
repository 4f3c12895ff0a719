"""SmoothGrad: reduces to its base, is seeded, matches a naive loop, wraps any gradient method."""

import pytest
import torch

import medlens
from medlens.core.random import row_seeds
from medlens.attribution.smoothgrad import noise_sample
from medlens.errors import InputError, UnknownNameError
from tests.conftest import make_input, make_model



@pytest.mark.parametrize("base, options", [("gradient", {}), ("gradient", {"abs": True}), ("grad_x_input", {}),
                                           ("integrated_gradients", {"n_steps": 4})])
def test_one_sample_without_noise_equals_base(spatial_dims, base, options):
    model, x = make_model(spatial_dims), make_input(spatial_dims)
    smooth = medlens.explain(model, x, target=[0, 1, 2], method="smoothgrad", base=base, n_samples=1, noise=0.0,
                             base_options=options).values
    plain = medlens.explain(model, x, target=[0, 1, 2], method=base, **options).values
    torch.testing.assert_close(smooth, plain, rtol=1e-12, atol=1e-12)


def test_same_seed_same_result_other_seed_differs():
    model, x = make_model(2), make_input(2)
    a = medlens.explain(model, x, method="smoothgrad", n_samples=6, seed=3).values
    b = medlens.explain(model, x, method="smoothgrad", n_samples=6, seed=3, batch_size=4).values
    c = medlens.explain(model, x, method="smoothgrad", n_samples=6, seed=4).values
    torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert not torch.allclose(a, c)
    # a sample explained alone gets the same map as within the batch
    alone = medlens.explain(model, x[1:2], target=int(medlens.explain(model, x).target[1]), method="smoothgrad",
                            n_samples=6, seed=3).values
    torch.testing.assert_close(alone, a[1:2], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("variant", ["mean", "squared", "variance"])
def test_matches_naive_loop(spatial_dims, variant):
    model, x = make_model(spatial_dims), make_input(spatial_dims, batch=2)
    n, level, seed = 5, 0.2, 11
    ours = medlens.explain(model, x, target=[2, 0], method="smoothgrad", n_samples=n, noise=level,
                           variant=variant, seed=seed, batch_size=3).values
    seeds = row_seeds(seed, n)
    for b, cls in enumerate([2, 0]):
        sigma = level * (x[b].max() - x[b].min())
        grads = []
        for k in range(n):
            noisy = (x[b] + sigma * noise_sample(x.shape[1:], seeds[k], x))[None].requires_grad_(True)
            (g,) = torch.autograd.grad(model(noisy)[0, cls], noisy)
            grads.append(g[0])
        g = torch.stack(grads)
        expected = {"mean": g.mean(0), "squared": (g**2).mean(0), "variance": g.var(0, unbiased=False)}[variant]
        torch.testing.assert_close(ours[b], expected, rtol=1e-9, atol=1e-12)


def test_noise_level_is_a_fraction_of_the_input_range():
    x = make_input(2, batch=1) * 7
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(x[0].numel(), 2)).double()
    # gradient of x -> sum(x * w) ** 2 / 2 along w reveals the noise: use grad_x_input on identity
    seeds = row_seeds(0, 1)
    noise = noise_sample(x.shape[1:], seeds[0], x)
    assert float(noise.std()) == pytest.approx(1.0, rel=0.1)
    squared = medlens.explain(model, x, target=0, method="smoothgrad", base="grad_x_input", n_samples=1,
                              noise=0.5).values
    w = model[1].weight.detach()[0].view_as(x[0])
    expected = w * (x[0] + 0.5 * (x.max() - x.min()) * noise)
    torch.testing.assert_close(squared[0], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("options, error, message", [
    ({"base": "occlusion"}, InputError, "does not use gradients"),
    ({"base": "smoothgrad"}, InputError, "cannot wrap itself"),
    ({"base": "nope"}, UnknownNameError, "unknown method"),
    ({"base_options": {"bogus": 1}}, UnknownNameError, "no option 'bogus'"),
    ({"variant": "median"}, UnknownNameError, "variant"),
    ({"n_samples": 0}, InputError, "n_samples"),
    ({"noise": -0.1}, InputError, "noise"),
    ({"seed": 1.5}, InputError, "seed"),
])
def test_bad_options(options, error, message):
    model, x = make_model(1), make_input(1)
    with pytest.raises(error, match=message):
        medlens.explain(model, x, method="smoothgrad", **{"n_samples": 2, **options})
