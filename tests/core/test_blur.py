"""The one blur equals scipy's gaussian_filter with the same truncation and border mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from medlens.core.blur import gaussian_blur, kernel_radius


def scipy_blur(x: torch.Tensor, sigma, mode: str, truncate: float) -> np.ndarray:
    """scipy's filter on each (sample, channel) field, blurring the spatial axes only."""
    out = np.empty(tuple(x.shape))
    for b in range(x.shape[0]):
        for c in range(x.shape[1]):
            out[b, c] = gaussian_filter(x[b, c].numpy(), sigma, mode=mode, truncate=truncate)
    return out


@pytest.mark.parametrize("mode", ["nearest", "mirror", "reflect", "constant"])
@pytest.mark.parametrize("shape", [(2, 2, 40), (2, 3, 21, 17), (1, 2, 13, 12, 11)], ids=["1d", "2d", "3d"])
@pytest.mark.parametrize("sigma", [0.6, 1.5, 2.5])
@pytest.mark.parametrize("truncate", [3.0, 4.0])
def test_blur_equals_scipy(mode, shape, sigma, truncate):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ours = gaussian_blur(x, sigma, truncate=truncate, mode=mode).numpy()
    np.testing.assert_allclose(ours, scipy_blur(x, sigma, mode, truncate), atol=1e-12)


def test_per_axis_sigma_equals_scipy():
    x = torch.randn(2, 1, 20, 30, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ours = gaussian_blur(x, [1.0, 3.0], mode="nearest").numpy()
    np.testing.assert_allclose(ours, scipy_blur(x, (1.0, 3.0), "nearest", 4.0), atol=1e-12)


def test_valid_mode_shrinks_each_axis_by_twice_the_radius():
    x = torch.randn(1, 1, 30, 25, dtype=torch.float64)
    r = kernel_radius(1.5, 3.5)
    out = gaussian_blur(x, 1.5, truncate=3.5, mode="valid")
    assert out.shape == (1, 1, 30 - 2 * r, 25 - 2 * r)
    full = torch.from_numpy(scipy_blur(x, 1.5, "constant", 3.5))
    torch.testing.assert_close(out, full[..., r:-r, r:-r])  # away from the borders, no mode matters


def test_constant_is_preserved_and_mass_kept():
    x = torch.full((1, 1, 9, 9), 3.0, dtype=torch.float64)
    torch.testing.assert_close(gaussian_blur(x, 2.0, mode="nearest"), x)
    spike = torch.zeros(1, 1, 41, dtype=torch.float64)
    spike[..., 20] = 1
    assert float(gaussian_blur(spike, 2.0, mode="constant").sum()) == pytest.approx(1.0)


def test_short_axes_cap_the_radius_instead_of_failing():
    x = torch.randn(1, 1, 4, dtype=torch.float64)
    out = gaussian_blur(x, 5.0, mode="mirror")
    assert out.shape == x.shape and torch.isfinite(out).all()


def test_unknown_mode_is_named():
    with pytest.raises(ValueError, match="unknown blur mode 'wrap'"):
        gaussian_blur(torch.zeros(1, 1, 5), 1.0, mode="wrap")
