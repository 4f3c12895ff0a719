"""Synthetic multichannel EEG with seizure-like spike-and-wave bursts at known times.

Each record is ``n_channels`` channels of ``seconds * fs`` samples:

* background: 1/f^beta noise (beta drawn in 1..2 per record, pink to brown, as resting EEG
  spectra fall off; He, "Scale-free brain activity", Trends Cogn Sci 2014), partly shared across
  channels, scaled to unit standard deviation;
* alpha rhythm: an 8-12 Hz oscillation with a slowly waxing and waning envelope, stronger on the
  posterior (higher-index) channels;
* distractors in every record, so that "any large or sharp event" is not the answer: one or two
  eye-blink deflections (slow, large, frontal channels) and a few isolated sharp transients;
* positive records only: one generalised burst of 3 Hz spike-and-wave (absence-seizure-like,
  rhythm drawn in 2.6-3.6 Hz), 0.75 to 1.5 s long, on every channel. The ground-truth mask
  ``(1, L)`` is 1 exactly over the burst and 0 elsewhere; negatives have empty masks.

All randomness comes from one ``torch.Generator`` seeded by ``seed``: the same arguments give
the same data.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from medlens.core.random import derive_seed, generator
from medlens.data.datasets import LabelledSet
from medlens.errors import InputError

CLASS_NAMES = ("background", "spike-and-wave")


def pink_noise(n: int, channels: int, length: int, beta: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Noise with power spectrum ~ 1/f^beta, unit std per channel: ``(n, channels, length)``.

    ``beta`` ``(n,)`` is the spectral exponent of each record.
    """
    freqs = torch.fft.rfftfreq(length, dtype=torch.float64)  # cycles per sample
    spectrum = torch.complex(
        torch.randn(n, channels, freqs.numel(), generator=gen, dtype=torch.float64),
        torch.randn(n, channels, freqs.numel(), generator=gen, dtype=torch.float64),
    )
    # amplitude ~ f^(-beta/2) so that power ~ f^(-beta); no DC
    scale = freqs[1:].clamp(min=1e-9)[None, :] ** (-beta[:, None] / 2)  # (n, F-1)
    spectrum[..., 0] = 0
    spectrum[..., 1:] *= scale[:, None, :]
    x = torch.fft.irfft(spectrum, n=length)
    return x / x.std(dim=-1, keepdim=True)


def spike_and_wave(length: int, fs: float, rate: float, phase: float) -> torch.Tensor:
    """A unit train of spike-and-wave complexes at ``rate`` Hz: ``(length,)``.

    Each complex: a sharp biphasic spike (derivative of a Gaussian, sigma 12 ms, peaks +-1.6)
    followed by a slow negative wave (Gaussian, sigma 60 ms, centred 155 ms after the spike,
    depth 1), the pattern of generalised 3 Hz spike-and-wave discharges. The first spike falls
    ``phase / rate`` seconds into the burst.
    """
    t = torch.arange(length, dtype=torch.float64) / fs
    out = torch.zeros(length, dtype=torch.float64)
    for k in range(int(length / fs * rate) + 1):
        spike_t = (phase + k) / rate
        # biphasic spike: derivative of a narrow Gaussian (sigma 12 ms), peaks at +-1.6
        d = (t - spike_t) / 0.012
        out += -1.6 * d * torch.exp(0.5 - 0.5 * d**2)
        # slow wave: a wide negative Gaussian centred 155 ms after the spike
        w = (t - spike_t - 0.155) / 0.06
        out -= torch.exp(-0.5 * w**2)
    return out


def make_eeg(
    n: int,
    *,
    n_channels: int = 4,
    fs: float = 128.0,
    seconds: float = 4.0,
    positive_fraction: float = 0.5,
    burst_seconds: tuple[float, float] = (0.75, 1.5),
    burst_amplitude: tuple[float, float] = (1.2, 2.2),
    seed: int = 0,
    name: str = "synthetic-eeg",
) -> LabelledSet:
    """Generate ``n`` labelled EEG records with ground-truth burst masks.

    Parameters
    ----------
    n : int
        Number of records; ``round(n * positive_fraction)`` of them hold a burst (in random
        order).
    n_channels : int
    fs : float
        Sampling rate (Hz).
    seconds : float
        Record duration; ``L = round(seconds * fs)``.
    burst_seconds : (float, float)
        Range of burst durations (s).
    burst_amplitude : (float, float)
        Range of burst amplitudes relative to the background's unit standard deviation.
    seed : int

    Returns
    -------
    LabelledSet
        ``inputs`` float32 ``(n, n_channels, L)``, ``labels`` int64 ``(n,)`` (1 = burst),
        ``masks`` float32 ``(n, 1, L)`` (1 over the burst), class names
        ``("background", "spike-and-wave")``.
    """
    length = int(round(seconds * fs))
    if n < 1 or n_channels < 1:
        raise InputError(f"need at least one record and one channel, got n={n}, n_channels={n_channels}")
    if not burst_seconds[1] * fs < length:
        raise InputError(f"bursts of up to {burst_seconds[1]} s do not fit in records of {seconds} s")
    gen = generator(seed, "eeg")

    def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(shape, generator=gen, dtype=torch.float64)

    t = torch.arange(length, dtype=torch.float64) / fs
    beta = uniform(1.0, 2.0, n)
    shared = pink_noise(n, 1, length, beta, gen)
    own = pink_noise(n, n_channels, length, beta, gen)
    x = 0.5 * shared + math.sqrt(0.75) * own  # unit variance, correlation 0.25 across channels
    x = x / x.std(dim=-1, keepdim=True)

    # alpha: posterior-dominant, envelope a slow raised sinusoid
    alpha_f = uniform(8.0, 12.0, n)
    wax = uniform(0.15, 0.4, n)[:, None]  # envelope frequency (Hz)
    envelope = 0.5 + 0.5 * torch.sin(2 * math.pi * wax * t + uniform(0, 2 * math.pi, n)[:, None])
    alpha = envelope * torch.sin(2 * math.pi * alpha_f[:, None] * t + uniform(0, 2 * math.pi, n)[:, None])
    gain = torch.linspace(0.3, 1.0, n_channels, dtype=torch.float64)
    x += uniform(0.6, 1.0, n)[:, None, None] * gain[None, :, None] * alpha[:, None, :]

    # distractors: blinks on frontal channels, isolated sharp transients anywhere
    frontal = torch.linspace(1.0, 0.1, n_channels, dtype=torch.float64)
    for i in range(n):
        for _ in range(int(torch.randint(1, 3, (1,), generator=gen))):
            centre = float(uniform(0.2, seconds - 0.2))
            blink = torch.exp(-0.5 * ((t - centre) / 0.08) ** 2) * float(uniform(2.0, 4.0))
            x[i] += frontal[:, None] * blink[None, :]
        for _ in range(int(torch.randint(1, 4, (1,), generator=gen))):
            centre = float(uniform(0.1, seconds - 0.1))
            channel = int(torch.randint(n_channels, (1,), generator=gen))
            d = (t - centre) / 0.012
            x[i, channel] += -d * torch.exp(0.5 - 0.5 * d**2) * float(uniform(1.5, 3.0))

    n_pos = int(round(n * positive_fraction))
    labels = torch.zeros(n, dtype=torch.long)
    labels[torch.randperm(n, generator=gen)[:n_pos]] = 1
    masks = torch.zeros(n, 1, length)
    spread = uniform(0.6, 1.0, n, n_channels)  # generalised, not quite uniform over the scalp
    for i in torch.nonzero(labels).flatten().tolist():
        duration = int(round(float(uniform(*burst_seconds)) * fs))
        start = int(torch.randint(0, length - duration + 1, (1,), generator=gen))
        rate = float(uniform(2.6, 3.6))
        wave = spike_and_wave(duration, fs, rate, float(uniform(0.0, 1.0)))
        amplitude = float(uniform(*burst_amplitude))
        x[i, :, start : start + duration] += amplitude * spread[i][:, None] * wave[None, :]
        masks[i, 0, start : start + duration] = 1.0
    return LabelledSet(x.float(), labels, masks, name, CLASS_NAMES)


def write_eeg_npz(
    path: str | Path, *, n_train: int = 600, n_val: int = 150, n_test: int = 150, seed: int = 0, **options
) -> Path:
    """Write a synthetic EEG data set in the MedMNIST-like npz layout.

    Keys ``{split}_signals`` ``(N, C, L)``, ``{split}_labels`` ``(N,)``, ``{split}_masks``
    ``(N, 1, L)`` for ``train``/``val``/``test``, plus ``class_names`` and ``fs``. Each split has
    its own seed (``derive_seed(seed, split)``), so splits never share records.
    ``options`` go to :func:`make_eeg`.
    """
    import numpy as np  # only to write the file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, object] = {}
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        data = make_eeg(n, seed=derive_seed(seed, split), **options)
        arrays[f"{split}_signals"] = data.inputs.numpy()
        arrays[f"{split}_labels"] = data.labels.numpy()
        arrays[f"{split}_masks"] = data.masks.numpy().astype(np.uint8)
    arrays["class_names"] = np.array(CLASS_NAMES)
    arrays["fs"] = np.array(float(options.get("fs", 128.0)))
    with open(path, "wb") as fh:
        np.savez_compressed(fh, **arrays)
    return path
