"""Parameterisations: how the optimised input is represented.

Gradient ascent does not act on the image itself but on a *field* from which the image is made:

``image = lo + (hi - lo) * sigmoid(M @ field)``

where ``(lo, hi)`` is the model's valid input range and ``M`` an optional channel-mixing matrix
(colour decorrelation). Two fields:

* :class:`PixelImage`: one free value per element (Erhan et al. 2009).
* :class:`FourierImage`: the field is the inverse real FFT of a learnt spectrum whose
  frequencies are scaled by ``1/|f|^decay_power``. Natural images have a ~1/f amplitude
  spectrum, so this makes steepest ascent equalised across frequencies instead of dominated
  by high-frequency noise (Olah et al., "Feature Visualization", Distill 2017, section
  "Preconditioning and parameterization"; Lucid's ``fft_image``). Works on 1D, 2D and 3D
  inputs through ``rfftn`` over the spatial axes.

A parameterisation holds tensors that are optimised (real state, hence a class); calling it
returns the current image ``(B, C, *spatial)``, and :meth:`optimizer` gives the optimiser that
suits its basis.

Why the Fourier field has its own optimiser: Adam divides every coordinate's step by that
coordinate's own gradient scale, so after a few steps each coordinate moves at about the same
rate whatever its gradient. In the pixel basis this turns a grating-shaped gradient into a
square wave, still the grating. In the Fourier basis it gives every frequency the same step,
including the side lobes of a detector's spectral response and the noise the random transforms
add, and the 1/f preconditioning is undone: on planted first-layer gratings (periods 3 to 12
pixels) the Fourier images reached only 0.35-0.55 best-phase correlation with the grating
where pixels reached 0.74-0.86. :class:`ImageAdam` normalises by one second moment per image
instead, which commutes with any orthonormal change of basis, so the spectrum scaling is the
only preconditioner. With it, and the render default's 1/f^0.5 scaling, the Fourier images reach
0.77-0.81 on the same detectors against 0.74-0.80 for pixels (two seeds, 96 steps;
``benchmarks/fourier_frequencies.py``; ``tests/featurevis/test_featurevis_param.py`` plants
them at several frequencies).
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import torch

from medlens.core.registry import Registry
from medlens.errors import InputError


def channel_correlation_sqrt(samples: torch.Tensor) -> torch.Tensor:
    """Square root of the channel covariance of data, for colour decorrelation.

    Parameters
    ----------
    samples : torch.Tensor
        Inputs ``(N, C, *spatial)`` from the model's training distribution.

    Returns
    -------
    torch.Tensor
        ``(C, C)`` symmetric square root of the channel covariance, scaled so that its largest
        column has unit norm (Lucid's normalisation of its ImageNet colour matrix), so the field
        keeps the magnitude it would have without decorrelation.
    """
    if samples.ndim < 3:
        raise InputError(f"samples must be (N, C, *spatial), got shape {tuple(samples.shape)}")
    c = samples.shape[1]
    flat = samples.detach().double().transpose(0, 1).reshape(c, -1)  # (C, N * positions)
    cov = torch.cov(flat) if flat.shape[1] > 1 else torch.eye(c, dtype=torch.float64)
    cov = torch.atleast_2d(cov)
    evals, evecs = torch.linalg.eigh(cov)
    root = evecs @ torch.diag(evals.clamp_min(0).sqrt()) @ evecs.T
    norm = root.norm(dim=0).max()
    if not norm > 0:
        return torch.eye(c, dtype=torch.float64)
    return root / norm


def _mixing(decorrelate: torch.Tensor | None, channels: int) -> torch.Tensor | None:
    """Validate a channel-mixing matrix or derive one from data samples."""
    if decorrelate is None or channels == 1:
        return None
    m = torch.as_tensor(decorrelate)
    if m.ndim >= 3:  # data samples (N, C, *spatial)
        if m.shape[1] != channels:
            raise InputError(f"decorrelation samples have {m.shape[1]} channels; the input has {channels}")
        m = channel_correlation_sqrt(m)
    if tuple(m.shape) != (channels, channels) or not torch.isfinite(m).all():
        raise InputError(
            f"decorrelate must be a finite ({channels}, {channels}) matrix or data samples (N, {channels}, ...), "
            f"got shape {tuple(m.shape)}"
        )
    return m


class ImageAdam(torch.optim.Optimizer):
    """Adam with one second-moment estimate per image instead of one per coordinate.

    For a parameter of shape ``(B, ...)``: ``m <- b1 m + (1 - b1) g``,
    ``v_b <- b2 v_b + (1 - b2) mean(g_b^2)``, ``p <- p - lr m_hat / (sqrt(v_hat_b) + eps)``
    with the bias corrections of Kingma and Ba (2015). The update is equivariant under
    orthonormal changes of basis of each image's parameters (Adam's is not), so a
    parameterisation's own preconditioning is kept; images of a batch stay independent.
    """

    def __init__(self, params, lr: float = 0.05, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps})

    @torch.no_grad()
    def step(self, closure=None):  # noqa: D102 - torch.optim.Optimizer API
        loss = None if closure is None else closure()
        for group in self.param_groups:
            b1, b2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["m"] = torch.zeros_like(p)
                    state["v"] = p.new_zeros((p.shape[0],) + (1,) * (p.ndim - 1))
                state["step"] += 1
                t = state["step"]
                state["m"].mul_(b1).add_(g, alpha=1 - b1)
                # mean square gradient of each image: (B, 1, ..., 1)
                square = g.pow(2).reshape(g.shape[0], -1).mean(1).reshape(state["v"].shape)
                state["v"].mul_(b2).add_(square, alpha=1 - b2)
                m_hat = state["m"] / (1 - b1**t)
                v_hat = state["v"] / (1 - b2**t)
                p.sub_(group["lr"] * m_hat / (v_hat.sqrt() + group["eps"]))
        return loss


class _Image:
    """Shared mapping from a field ``(B, C, *spatial)`` to an image in the input range."""

    def __init__(
        self, shape: Sequence[int], input_range: tuple[float, float], decorrelate: torch.Tensor | None,
        dtype: torch.dtype, device: torch.device | str,
    ) -> None:
        shape = tuple(int(s) for s in shape)
        if len(shape) < 3 or len(shape) > 5 or min(shape) < 1:
            raise InputError(f"shape must be (batch, channels, *spatial) with 1 to 3 spatial dims, got {shape}")
        lo, hi = (float(v) for v in input_range)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise InputError(f"input_range must be two finite numbers (low, high) with low < high, got {input_range}")
        self.shape = shape
        self.input_range = (lo, hi)
        self.dtype = dtype
        self.device = torch.device(device)
        mix = _mixing(decorrelate, shape[1])
        self.mixing = None if mix is None else mix.to(device=self.device, dtype=dtype)
        self.params: list[torch.Tensor] = []

    def field(self) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def optimizer(self, lr: float) -> torch.optim.Optimizer:
        """The optimiser :func:`~medlens.featurevis.render.render` uses on :attr:`params` (Adam)."""
        return torch.optim.Adam(self.params, lr=lr)

    def to_image(self, field: torch.Tensor) -> torch.Tensor:
        if self.mixing is not None:
            # mix channels: field (B, C, *spatial) -> (B, C, *spatial) with M applied per position
            field = torch.einsum("ij,bj...->bi...", self.mixing, field)
        lo, hi = self.input_range
        return lo + (hi - lo) * torch.sigmoid(field)

    def __call__(self) -> torch.Tensor:
        """The current image ``(B, C, *spatial)`` in the input range."""
        return self.to_image(self.field())

    def blur_(self, sigma: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class PixelImage(_Image):
    """One free parameter per input element.

    Parameters
    ----------
    shape : sequence of int
        ``(B, C, *spatial)``.
    input_range : (float, float)
    sd : float
        Standard deviation of the initial field (the image starts near mid-range grey).
    generator : torch.Generator
        Source of the initial noise (CPU).
    decorrelate : torch.Tensor, optional
        ``(C, C)`` mixing matrix or data samples (see :func:`channel_correlation_sqrt`).
    """

    def __init__(
        self, shape: Sequence[int], input_range: tuple[float, float] = (0.0, 1.0), *, sd: float = 0.01,
        generator: torch.Generator | None = None, decorrelate: torch.Tensor | None = None,
        dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(shape, input_range, decorrelate, dtype, device)
        noise = torch.randn(self.shape, generator=generator, dtype=torch.float64) * sd
        self.pixels = noise.to(device=self.device, dtype=dtype).requires_grad_(True)
        self.params = [self.pixels]

    def field(self) -> torch.Tensor:
        return self.pixels

    @torch.no_grad()
    def blur_(self, sigma: float) -> None:
        """Blur the field in place with a Gaussian of ``sigma`` elements (reflecting borders)."""
        from medlens.core.blur import gaussian_blur
        from medlens.featurevis.transforms import BLUR_MODE

        self.pixels.copy_(gaussian_blur(self.pixels, sigma, mode=BLUR_MODE))


def spectrum_frequencies(spatial: Sequence[int]) -> torch.Tensor:
    """``|f|`` in cycles per element on the ``rfftn`` grid of a ``spatial`` shape.

    Shape ``(*spatial[:-1], spatial[-1] // 2 + 1)``: full FFT frequencies on every axis but the
    last, which keeps only the non-negative half (the input is real).
    """
    axes = [torch.fft.fftfreq(n, dtype=torch.float64) for n in spatial[:-1]]
    axes.append(torch.fft.rfftfreq(spatial[-1], dtype=torch.float64))
    grids = torch.meshgrid(*axes, indexing="ij")
    return torch.sqrt(sum(g.pow(2) for g in grids))


def spectrum_scale(spatial: Sequence[int], decay_power: float = 1.0) -> torch.Tensor:
    """The ``1/|f|^decay_power`` weights of :class:`FourierImage`, normalised to unit RMS.

    The zero frequency is clamped to the lowest non-zero frequency ``1/max(spatial)`` (Lucid).
    Unit RMS over the grid makes a white spectrum of standard deviation ``sd`` give a field of
    standard deviation about ``sd``, as in :class:`PixelImage`, for any size and rank (Lucid
    instead divides by a constant 4 tuned for 224x224 images).
    """
    freqs = spectrum_frequencies(spatial)
    scale = 1.0 / freqs.clamp_min(1.0 / max(spatial)).pow(decay_power)
    return scale / scale.pow(2).mean().sqrt()


class FourierImage(_Image):
    """A field parameterised by its 1/f-scaled spectrum (1D, 2D or 3D).

    ``field = irfftn(spectrum * scale, norm="ortho")`` over the spatial axes, with ``scale`` from
    :func:`spectrum_scale`. The orthonormal transform keeps gradient magnitudes comparable to
    the pixel parameterisation, so the same learning rate works for both.

    Parameters
    ----------
    shape : sequence of int
        ``(B, C, *spatial)``.
    input_range : (float, float)
    decay_power : float
        Exponent of the 1/f scaling; 0 gives an orthonormal (unpreconditioned) Fourier basis.
    sd : float
        Standard deviation of the initial spectrum.
    generator, decorrelate, dtype, device
        As for :class:`PixelImage`.
    """

    def __init__(
        self, shape: Sequence[int], input_range: tuple[float, float] = (0.0, 1.0), *, decay_power: float = 1.0,
        sd: float = 0.01, generator: torch.Generator | None = None, decorrelate: torch.Tensor | None = None,
        dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu",
    ) -> None:
        super().__init__(shape, input_range, decorrelate, dtype, device)
        self.spatial = self.shape[2:]
        self.axes = tuple(range(2, len(self.shape)))
        scale = spectrum_scale(self.spatial, decay_power)
        self.scale = scale.to(device=self.device, dtype=dtype)
        # real and imaginary parts as a trailing axis of a real leaf tensor, so any optimiser works
        spec_shape = (*self.shape[:2], *scale.shape, 2)
        noise = torch.randn(spec_shape, generator=generator, dtype=torch.float64) * sd
        self.spectrum = noise.to(device=self.device, dtype=dtype).requires_grad_(True)
        self.params = [self.spectrum]

    def optimizer(self, lr: float) -> torch.optim.Optimizer:
        """:class:`ImageAdam`: per-image step normalisation that keeps the 1/f preconditioning."""
        return ImageAdam(self.params, lr=lr)

    def field(self) -> torch.Tensor:
        spec = torch.view_as_complex(self.spectrum) * self.scale
        return torch.fft.irfftn(spec, s=self.spatial, dim=self.axes, norm="ortho")

    @torch.no_grad()
    def blur_(self, sigma: float) -> None:
        """Blur the field in place with a Gaussian of ``sigma`` elements.

        Exact in this parameterisation: a circular Gaussian blur multiplies the spectrum by
        ``exp(-2 pi^2 sigma^2 |f|^2)``.
        """
        freqs = spectrum_frequencies(self.spatial).to(device=self.device, dtype=self.dtype)
        gain = torch.exp(-2.0 * math.pi**2 * float(sigma) ** 2 * freqs.pow(2))
        self.spectrum.mul_(gain[..., None])


#: The decay power behind the name ``"fourier"`` (render's default parameterisation). Lucid's
#: 1/f (power 1) favours coarse structure so strongly that fine first-layer patterns lose: on
#: planted gratings of period 3-12 pixels (96 steps, :class:`ImageAdam`) power 1 reached a
#: best-phase correlation of 0.63-0.82 per seed (0.74 on average over periods and two seeds),
#: power 0.5 0.69-0.85 (0.79), pixels 0.70-0.86 (0.77; ``benchmarks/fourier_frequencies.py``).
#: ``FourierImage(...)`` itself keeps the 1/f default.
RENDER_DECAY_POWER = 0.5


def _render_fourier(shape, input_range=(0.0, 1.0), **kwargs) -> FourierImage:
    """``FourierImage`` with the render default :data:`RENDER_DECAY_POWER`."""
    kwargs.setdefault("decay_power", RENDER_DECAY_POWER)
    return FourierImage(shape, input_range, **kwargs)


#: Image parameterisations by name (``render(param=...)``).
PARAMETERISATIONS: Registry[Callable[..., object]] = Registry("parameterisation")
PARAMETERISATIONS.add("fourier", _render_fourier)
PARAMETERISATIONS.add("pixel", PixelImage)
