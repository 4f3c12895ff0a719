"""Feature visualisation of the trained demo model (CNN on PneumoniaMNIST 28x28): class
probabilities are driven to certainty, and what the Fourier parameterisation does on such
small inputs."""

from __future__ import annotations

import pytest
import torch

from medlens import featurevis as fv
from medlens.featurevis.param import spectrum_frequencies

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_model():
    from medlens.app.recipes import train_on_dataset

    model, meta = train_on_dataset("pneumoniamnist", epochs=2, seed=0, progress=False)
    return model.eval(), meta


def test_probability_reaches_099_for_each_class(demo_model):
    model, meta = demo_model
    classes = range(len(meta["class_names"]))
    objectives = [fv.probability(k) for k in classes]
    images, values = fv.render(model, objectives, (len(objectives), 1, 28, 28), steps=128)
    reached = fv.objective_values(model, objectives, images)  # on the returned images, without transforms
    assert (reached >= 0.99).all(), reached
    assert (values[-1] > values[0]).all()
    assert images.min() >= 0 and images.max() <= 1


def high_frequency_share(images: torch.Tensor) -> torch.Tensor:
    """Share of each image's (mean-free) spectral energy above 1/4 cycle per pixel, ``(N,)``."""
    x = images[:, 0] - images[:, 0].mean((-2, -1), keepdim=True)
    power = torch.fft.rfftn(x, dim=(-2, -1)).abs().pow(2)
    high = spectrum_frequencies(images.shape[-2:]) > 0.25
    return power[:, high].sum(1) / power.sum((-2, -1)).clamp_min(1e-12)


def test_fourier_against_pixels_on_28x28(demo_model):
    """What the Fourier parameterisation shows on the demo model, in the same 128 steps.

    It does NOT reach a higher objective than plain pixels here: on 28x28 inputs, with Adam,
    both reach about the same activation (we measured the Fourier objective at 0.80-0.96 of the
    pixel one over last-block channels and class logits, winning on 10-40% of the units). What
    it does show is the preconditioning itself: at a comparable objective its images carry
    clearly less high-frequency energy, i.e. the patterns it finds are smoother and less
    adversarial-looking. Its advantage in reaching the objective is documented for 224x224
    ImageNet models (Olah et al. 2017), not for inputs this small.
    """
    model, _ = demo_model
    objectives = [fv.channel("features.block3.act", c) for c in range(16)] + [fv.logit(0), fv.logit(1)]
    shape = (len(objectives), 1, 28, 28)
    results = {}
    for param in ("pixel", "fourier"):
        images, _ = fv.render(model, objectives, shape, steps=128, param=param)
        results[param] = (fv.objective_values(model, objectives, images), high_frequency_share(images), images)
    pixel_value, pixel_hf, pixel_images = results["pixel"]
    fourier_value, fourier_hf, fourier_images = results["fourier"]
    varied = (pixel_images.std((1, 2, 3)) > 0.05) & (fourier_images.std((1, 2, 3)) > 0.05)
    assert varied.sum() >= 8  # most units draw a pattern (the rest stay near-uniform in both)
    # comparable objective
    assert fourier_value.mean() >= 0.8 * pixel_value.mean(), (fourier_value.mean(), pixel_value.mean())
    # smoother images: less high-frequency energy for most units, and in the median
    assert (fourier_hf[varied] < pixel_hf[varied]).float().mean() >= 0.7
    assert fourier_hf[varied].median() < 0.85 * pixel_hf[varied].median()
