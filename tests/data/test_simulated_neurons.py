"""Simulated neurons: tuning curves peak where set, responses carry the stated noise, stimuli are what they claim."""

from __future__ import annotations

import math

import pytest
import torch

from medlens.data import load_dataset
from medlens.data.synthetic.simulated_neurons import (
    BlobNeuron, GaborEnergyNeuron, default_neurons, grating, orientation_tuning, position_tuning, responses,
    stimulus_set,
)
from medlens.errors import InputError

GABORS = [n for n in default_neurons(28) if isinstance(n, GaborEnergyNeuron)]


def _angle_gap(a: float, b: float) -> float:
    """Distance between two orientations (period pi)."""
    d = (a - b) % math.pi
    return min(d, math.pi - d)


@pytest.mark.parametrize("neuron", GABORS, ids=lambda n: f"{math.degrees(n.orientation):.0f}deg")
def test_orientation_tuning_peaks_at_the_set_orientation(neuron):
    thetas = torch.linspace(0, math.pi, 37)[:-1]  # 5 degree steps
    curve = orientation_tuning(neuron, thetas)
    assert _angle_gap(float(thetas[curve.argmax()]), neuron.orientation) < math.radians(2.6)
    # orthogonal gratings drive it far less
    orth = orientation_tuning(neuron, torch.tensor([neuron.orientation + math.pi / 2]))
    assert float(orth[0]) < 0.2 * float(curve.max())


def test_a_complex_cell_is_phase_invariant_and_tuned_to_its_period():
    n = GaborEnergyNeuron(math.radians(30), 6.0, (13.5, 13.5), sigma=4.0)
    phases = torch.linspace(0, 2 * math.pi, 13)[:-1]
    r = n.respond(torch.stack([grating(28, n.orientation, n.period, float(p)) for p in phases]))
    assert float(r.max() / r.min()) < 1.15  # an energy unit: phase changes barely matter
    periods = torch.tensor([3.0, 4.0, 5.0, 6.0, 7.5, 9.0, 12.0])
    best = [float(orientation_tuning(n, torch.tensor([n.orientation]), period=float(p))[0]) for p in periods]
    assert float(periods[torch.tensor(best).argmax()]) == 6.0


@pytest.mark.parametrize("neuron", [GABORS[0], GABORS[1], BlobNeuron((9.0, 18.0), sigma=1.5)],
                         ids=["gabor0", "gabor45", "blob"])
def test_position_tuning_peaks_at_the_receptive_field_centre(neuron):
    heat = position_tuning(neuron, 28)
    y, x = divmod(int(heat.argmax()), 28)
    assert abs(y - neuron.centre[0]) <= 1 and abs(x - neuron.centre[1]) <= 1


def test_a_blob_unit_prefers_a_bright_centre_of_its_own_size():
    n = BlobNeuron((14.0, 14.0), sigma=2.0)
    yy, xx = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    d2 = (yy - 14) ** 2 + (xx - 14) ** 2
    sizes = torch.tensor([0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0])
    blobs = torch.stack([(0.5 + 0.5 * torch.exp(-d2 / (2 * s**2)))[None] for s in sizes]).double()
    r = n.respond(blobs)
    assert 1.0 <= float(sizes[r.argmax()]) <= 3.0
    dark = 1.0 - blobs  # the inverted blob (dark centre) drives a rectified on-centre unit not at all
    assert float(n.respond(dark).max()) == 0.0


def test_recorded_responses_carry_the_stated_noise():
    images = stimulus_set(800, 28, seed=3)
    neurons = default_neurons(28)
    recorded, clean = responses(neurons, images, noise=0.5, generator=torch.Generator().manual_seed(0))
    assert recorded.shape == clean.shape == (800, len(neurons))
    # responses of each kind agree with the definition
    torch.testing.assert_close(clean[:, 0], neurons[0].respond(images.double()))
    noise_sd = (recorded - clean).std(0) / clean.std(0)
    torch.testing.assert_close(noise_sd, torch.full_like(noise_sd, 0.5), atol=0.04, rtol=0)
    ceiling = 1 / math.sqrt(1 + 0.5**2)
    for k in range(len(neurons)):
        r = torch.corrcoef(torch.stack([recorded[:, k], clean[:, k]]))[0, 1]
        assert abs(float(r) - ceiling) < 0.05
    # the units are not silent on these stimuli: their responses vary
    assert (clean.std(0) / clean.mean(0).clamp_min(1e-9) > 0.2).all()


def test_stimulus_set_mixes_bundled_scans_and_textures():
    images = stimulus_set(200, 28, scans=0.5, seed=1)
    assert images.shape == (200, 1, 28, 28) and images.dtype == torch.float32
    assert float(images.min()) >= 0 and float(images.max()) <= 1
    scans = load_dataset("pneumoniamnist", "train").inputs[:100]
    flat_scans = scans.flatten(1)
    from_scans = [bool(((flat_scans - img.flatten()).abs().max(1).values < 1e-6).any()) for img in images]
    assert sum(from_scans) == 100
    assert torch.equal(images, stimulus_set(200, 28, scans=0.5, seed=1))
    assert not torch.equal(images, stimulus_set(200, 28, scans=0.5, seed=2))
    with pytest.raises(InputError):
        stimulus_set(10, 28, scans=1.5)
    with pytest.raises(InputError):
        responses(default_neurons(28), torch.zeros(3, 28, 28))
