"""Simulated visual neurons with known tuning, and stimuli to record them with.

The ground truth for DeepTune (Abbasi-Asl et al., "The DeepTune framework for modeling and
characterizing neurons in visual cortex area V4", bioRxiv 2018): each simulated neuron has a
known preferred stimulus, so the image a fitted model says the neuron prefers can be scored.

Two kinds of unit, both classic models of early visual cortex:

* :class:`GaborEnergyNeuron`: a complex cell (Adelson and Bergen, "Spatiotemporal energy models
  for the perception of motion", 1985): ``r = gain * sqrt(<x, G_even>^2 + <x, G_odd>^2)`` for a
  quadrature pair of Gabor filters with a preferred orientation, period, position and envelope.
  It prefers the Gabor pattern at any phase and either contrast polarity.
* :class:`BlobNeuron`: a centre-surround unit, ``r = gain * relu(<x, DoG>)`` with a difference of
  Gaussians at a preferred position and size; it prefers a bright blob on a dark ring.

Responses are recorded as ``r + noise`` with Gaussian noise of a given fraction of the
responses' standard deviation over the stimulus set (trial-to-trial variability).

Stimuli (:func:`stimulus_set`) mix the bundled chest X-ray scans (PneumoniaMNIST) with
synthetic textures (windowed gratings, sums of gratings, band-pass noise and blobs), all
``(N, 1, size, size)`` in ``[0, 1]``. Everything is seeded; nothing is downloaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Union

import torch

from medlens.core.random import generator
from medlens.errors import InputError


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel coordinates ``(y, x)`` of a ``size x size`` image, each ``(size, size)`` float64."""
    r = torch.arange(float(size), dtype=torch.float64)
    return torch.meshgrid(r, r, indexing="ij")


@dataclass(frozen=True)
class GaborEnergyNeuron:
    """A complex cell: the energy of a quadrature pair of Gabor filters.

    Attributes
    ----------
    orientation : float
        Direction of the carrier's wave vector in radians (0: the pattern varies along ``y``,
        i.e. horizontal stripes).
    period : float
        Carrier period in pixels.
    centre : (float, float)
        ``(y, x)`` of the receptive field's centre in pixels.
    sigma : float
        Standard deviation of the Gaussian envelope in pixels.
    gain : float
    """

    orientation: float
    period: float
    centre: tuple[float, float]
    sigma: float = 3.0
    gain: float = 1.0

    kind = "gabor-energy"

    def filters(self, size: int) -> torch.Tensor:
        """The even and odd Gabor filters, ``(2, size, size)`` float64, each zero-mean and unit-norm."""
        y, x = _grid(size)
        dy, dx = y - self.centre[0], x - self.centre[1]
        u = dy * math.cos(self.orientation) + dx * math.sin(self.orientation)
        envelope = torch.exp(-(dy**2 + dx**2) / (2 * self.sigma**2))
        out = []
        for phase in (0.0, math.pi / 2):
            g = envelope * torch.cos(2 * math.pi * u / self.period + phase)
            g = g - envelope * (g.sum() / envelope.sum())  # zero mean: blind to overall brightness
            out.append(g / g.norm())
        return torch.stack(out)

    def respond(self, images: torch.Tensor) -> torch.Tensor:
        """Noise-free responses ``(N,)`` to images ``(N, 1, size, size)``."""
        f = self.filters(images.shape[-1]).to(images.dtype)
        proj = torch.einsum("nhw,khw->nk", images[:, 0], f)  # (N, 2)
        return self.gain * proj.pow(2).sum(1).sqrt()

    def preferred_stimulus(self, size: int) -> torch.Tensor:
        """The even Gabor filter ``(1, size, size)``: what the unit responds to most per unit contrast."""
        return self.filters(size)[:1]


@dataclass(frozen=True)
class BlobNeuron:
    """A centre-surround unit: rectified response of a difference of Gaussians.

    Attributes
    ----------
    centre : (float, float)
        ``(y, x)`` in pixels.
    sigma : float
        Centre standard deviation; the surround has ``surround`` times it.
    surround : float
    gain : float
    """

    centre: tuple[float, float]
    sigma: float = 2.0
    surround: float = 2.0
    gain: float = 1.0

    kind = "blob"

    def filter(self, size: int) -> torch.Tensor:
        """The zero-mean, unit-norm difference of Gaussians ``(size, size)`` float64."""
        y, x = _grid(size)
        d2 = (y - self.centre[0]) ** 2 + (x - self.centre[1]) ** 2
        s1, s2 = self.sigma, self.sigma * self.surround
        dog = torch.exp(-d2 / (2 * s1**2)) / s1**2 - torch.exp(-d2 / (2 * s2**2)) / s2**2
        dog = dog - dog.mean()
        return dog / dog.norm()

    def respond(self, images: torch.Tensor) -> torch.Tensor:
        """Noise-free responses ``(N,)`` to images ``(N, 1, size, size)``."""
        f = self.filter(images.shape[-1]).to(images.dtype)
        return self.gain * torch.relu(torch.einsum("nhw,hw->n", images[:, 0], f))

    def preferred_stimulus(self, size: int) -> torch.Tensor:
        """The difference of Gaussians ``(1, size, size)``."""
        return self.filter(size)[None]


Neuron = Union[GaborEnergyNeuron, BlobNeuron]


def default_neurons(size: int = 28) -> list[Neuron]:
    """Six units of varied tuning that fit a ``size x size`` image: four complex cells
    (orientations 0, 45, 90 and 135 degrees, periods 5 to 8 pixels, different positions) and
    two centre-surround units."""
    c = size / 2 - 0.5
    q = size / 7
    return [
        GaborEnergyNeuron(math.radians(0), 6.0, (c - q, c - q), sigma=3.0),
        GaborEnergyNeuron(math.radians(45), 5.0, (c + q, c - q), sigma=3.0),
        GaborEnergyNeuron(math.radians(90), 8.0, (c, c + q), sigma=3.5),
        GaborEnergyNeuron(math.radians(135), 6.0, (c, c), sigma=3.0),
        BlobNeuron((c - q, c + q), sigma=1.5),
        BlobNeuron((c + q, c + q), sigma=2.5),
    ]


def responses(
    neurons: Sequence[Neuron], images: torch.Tensor, *, noise: float = 0.3,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Recorded (noisy) and noise-free responses of every neuron to every image.

    Parameters
    ----------
    neurons : sequence of neurons
    images : torch.Tensor
        ``(N, 1, size, size)`` stimuli.
    noise : float
        Standard deviation of the additive Gaussian noise, as a fraction of each neuron's
        response standard deviation over ``images``. The best attainable correlation between
        the recording and any prediction is then ``1 / sqrt(1 + noise^2)``.
    generator : torch.Generator
        Source of the noise (seeded 0 when omitted).

    Returns
    -------
    (recorded, clean) : torch.Tensor, torch.Tensor
        Both ``(N, len(neurons))`` float64.
    """
    if images.ndim != 4 or images.shape[1] != 1 or images.shape[2] != images.shape[3]:
        raise InputError(f"stimuli must be (N, 1, size, size), got shape {tuple(images.shape)}")
    if noise < 0:
        raise InputError(f"noise must be non-negative, got {noise}")
    x = images.double()
    clean = torch.stack([n.respond(x) for n in neurons], 1)  # (N, neurons)
    gen = generator if generator is not None else torch.Generator().manual_seed(0)
    sd = clean.std(0, keepdim=True)
    recorded = clean + noise * sd * torch.randn(clean.shape, generator=gen, dtype=torch.float64)
    return recorded, clean


def grating(size: int, orientation: float, period: float, phase: float = 0.0, contrast: float = 1.0) -> torch.Tensor:
    """A full-field sinusoidal grating ``(1, size, size)`` in ``[0, 1]`` around mid-grey."""
    y, x = _grid(size)
    u = y * math.cos(orientation) + x * math.sin(orientation)
    return (0.5 + 0.5 * contrast * torch.cos(2 * math.pi * u / period + phase))[None]


def orientation_tuning(neuron: Neuron, orientations: torch.Tensor, size: int = 28, period: float | None = None) -> torch.Tensor:
    """Responses to full-field gratings of each orientation, at the best of 8 phases: ``(len(orientations),)``.

    ``period`` defaults to the neuron's own (6 pixels for units without one).
    """
    p = period if period is not None else getattr(neuron, "period", 6.0)
    out = []
    for theta in orientations.tolist():
        stims = torch.stack([grating(size, theta, p, phase) for phase in torch.arange(8) * math.pi / 4])
        out.append(neuron.respond(stims).max())
    return torch.stack(out)


def position_tuning(neuron: Neuron, size: int = 28) -> torch.Tensor:
    """Responses to the neuron's own preferred stimulus moved to every position: ``(size, size)``.

    The preferred stimulus, scaled into ``[0, 1]`` around mid-grey, is placed with its centre on
    each pixel (circular shift); the map peaks at the neuron's receptive-field centre.
    """
    stim = neuron.preferred_stimulus(size)[0]
    cy, cx = (int(round(v)) for v in neuron.centre)
    out = torch.empty(size, size, dtype=torch.float64)
    for yy in range(size):
        for xx in range(size):
            moved = torch.roll(stim, shifts=(yy - cy, xx - cx), dims=(0, 1))
            out[yy, xx] = neuron.respond((0.5 + 0.5 * moved / moved.abs().max())[None, None])[0]
    return out


def _textures(n: int, size: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` synthetic textures ``(n, 1, size, size)`` in ``[0, 1]``: windowed gratings, plaids,
    band-pass noise and blobs, with random orientation, period, phase, position and contrast."""
    y, x = _grid(size)
    out = torch.empty(n, 1, size, size, dtype=torch.float64)
    freqs = torch.sqrt(torch.fft.fftfreq(size, dtype=torch.float64)[:, None] ** 2
                       + torch.fft.fftfreq(size, dtype=torch.float64)[None, :] ** 2)

    def u() -> float:
        return float(torch.rand((), generator=gen, dtype=torch.float64))

    for i in range(n):
        kind = i % 4
        if kind in (0, 1):  # one (windowed) grating or a plaid of two
            img = torch.zeros(size, size, dtype=torch.float64)
            for _ in range(1 + kind):
                theta, period, phase = u() * math.pi, 3.0 + 9.0 * u(), u() * 2 * math.pi
                cy, cx, s = u() * size, u() * size, 3.0 + u() * size / 2
                env = torch.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * s**2))
                img = img + env * torch.cos(2 * math.pi * (y * math.cos(theta) + x * math.sin(theta)) / period + phase)
        elif kind == 2:  # band-pass noise around a random frequency
            f0, bw = 0.08 + 0.25 * u(), 0.03 + 0.05 * u()
            spec = torch.fft.fft2(torch.randn(size, size, generator=gen, dtype=torch.float64))
            img = torch.fft.ifft2(spec * torch.exp(-((freqs - f0) ** 2) / (2 * bw**2))).real
        else:  # a few blobs of random size, polarity and position
            img = torch.zeros(size, size, dtype=torch.float64)
            for _ in range(1 + int(u() * 4)):
                cy, cx, s = u() * size, u() * size, 1.0 + 3.0 * u()
                img = img + (1 if u() < 0.6 else -1) * torch.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * s**2))
        img = img / img.abs().max().clamp_min(1e-12)
        out[i, 0] = 0.5 + 0.5 * (0.3 + 0.7 * u()) * img
    return out


def stimulus_set(n: int = 3000, size: int = 28, *, scans: float = 0.5, seed: int = 0) -> torch.Tensor:
    """Stimuli to record simulated neurons with: bundled scans and synthetic textures.

    Parameters
    ----------
    n : int
        Number of images.
    size : int
        Side in pixels; the scans (28 x 28) are resampled when it differs.
    scans : float
        Fraction of the images taken from the PneumoniaMNIST training split (in file order);
        the rest are textures.
    seed : int
        Seeds the textures and the interleaving of scans and textures.

    Returns
    -------
    torch.Tensor
        ``(n, 1, size, size)`` float32 in ``[0, 1]``.
    """
    from medlens.data.datasets import load_dataset

    if n < 1 or size < 8 or not 0 <= scans <= 1:
        raise InputError(f"stimulus_set needs n >= 1, size >= 8 and 0 <= scans <= 1, got {n}, {size}, {scans}")
    gen = generator(seed, "stimuli")
    n_scans = int(round(n * scans))
    parts = []
    if n_scans:
        scan = load_dataset("pneumoniamnist", "train").inputs[:n_scans].double()
        if len(scan) < n_scans:
            raise InputError(f"the bundled scans hold {len(scan)} images; asked for {n_scans}")
        if scan.shape[-1] != size:
            scan = torch.nn.functional.interpolate(scan, size=(size, size), mode="bilinear", align_corners=False)
        parts.append(scan)
    parts.append(_textures(n - n_scans, size, gen))
    images = torch.cat(parts)
    order = torch.randperm(n, generator=gen)
    return images[order].clamp(0, 1).float()
