"""Known answers and naive references for the evaluation metrics (faithfulness, localisation,
similarity, robustness, baselines)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from medlens.errors import InputError
from medlens.evaluation import (
    centre_attribution,
    deletion,
    edge_attribution,
    insertion,
    iou_at,
    mass_in_mask,
    max_sensitivity,
    otsu_threshold,
    pointing_game,
    random_attribution,
    rankdata,
    spearman,
    ssim,
)
from medlens.evaluation.faithfulness import reference_input
from medlens.evaluation.localisation import dilate
from tests.conftest import SHAPES, make_input, make_model


class SumModel(nn.Module):
    """f(x) = sum(x): logits (0, sum), so p(class 1) = sigmoid(sum(x)), increasing in every input."""

    def forward(self, x):
        s = x.reshape(len(x), -1).sum(1)
        return torch.stack([torch.zeros_like(s), s], dim=1)


def _positive_input(spatial_dims: int, batch: int = 3) -> torch.Tensor:
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(batch, *SHAPES[spatial_dims], generator=gen, dtype=torch.float64)
    return x * 4.0 / x[0].numel()  # sums near 2: the sigmoid is far from saturation


# --------------------------------------------------------------------------------------------
# Faithfulness: deletion and insertion
# --------------------------------------------------------------------------------------------


def test_deletion_known_answer_perfect_reversed_random(spatial_dims):
    """For f = sum(x) and attribution x, deleting (zeroing) the largest inputs first gives the
    lowest possible curve at every step; the reversed ranking the highest; random in between."""
    model, x = SumModel(), _positive_input(spatial_dims)
    target = torch.ones(len(x), dtype=torch.long)
    perfect = deletion(model, x, x, target, steps=10)
    reverse = deletion(model, x, -x, target, steps=10)
    rand = deletion(model, x, random_attribution(x, seed=1), target, steps=10)
    assert (perfect.curve <= rand.curve + 1e-12).all() and (rand.curve <= reverse.curve + 1e-12).all()
    assert (perfect.auc < rand.auc).all() and (rand.auc < reverse.auc).all()
    # closed form: after removing the top k positions (all channels of a position at once, ranked
    # by the channel sum), p = sigmoid(sum of the other positions)
    flat = x.sum(1).reshape(len(x), -1)
    values = flat.sort(dim=1, descending=True).values
    n = flat.shape[1]
    for step, frac in enumerate(perfect.fractions.tolist()):
        k = round(frac * n)
        expected = torch.sigmoid(values[:, k:].sum(1))
        torch.testing.assert_close(perfect.curve[:, step], expected)
    assert perfect.fractions[0] == 0 and perfect.fractions[-1] == 1
    torch.testing.assert_close(perfect.curve[:, -1], torch.full((len(x),), 0.5, dtype=torch.float64))


def test_deletion_of_a_summed_region_score_follows_the_score_not_a_saturated_sigmoid():
    """A segmentation target (ReducedOutput: class 1's logits summed inside a region) has no
    probability: its sigmoid is 1.0 until nearly everything is deleted. The curve is the summed
    score itself, here in closed form: the sum of the positions not yet deleted."""
    from medlens.core.targets import ReducedOutput

    class Segmenter(nn.Module):
        def forward(self, x):
            return torch.cat([-x, x], dim=1)  # (B, 2, H, W): class 1's logit is the input

    x = torch.rand(1, 1, 8, 8, generator=torch.Generator().manual_seed(0)) * 100 + 1
    model = ReducedOutput(Segmenter(), channel=1, mask=torch.ones(8, 8))
    curve = deletion(model, x, x, torch.zeros(1, dtype=torch.long), steps=4)
    values = x.flatten().sort(descending=True).values.double()
    for step, frac in enumerate(curve.fractions.tolist()):
        torch.testing.assert_close(curve.curve[0, step], values[round(frac * 64):].sum(), rtol=1e-5, atol=1e-3)


def test_absolute_ranks_by_magnitude():
    model, x = SumModel(), _positive_input(2)
    target = torch.ones(len(x), dtype=torch.long)
    perfect = deletion(model, x, x, target, steps=6)
    flipped = deletion(model, x, -x, target, steps=6, abs=True)  # same magnitudes, same ranking
    torch.testing.assert_close(flipped.curve, perfect.curve)
    assert (deletion(model, x, -x, target, steps=6).auc > perfect.auc).all()


def test_insertion_known_answer(spatial_dims):
    """Insertion from a zero baseline: restoring the largest inputs first is the best curve."""
    model, x = SumModel(), _positive_input(spatial_dims)
    target = torch.ones(len(x), dtype=torch.long)
    perfect = insertion(model, x, x, target, steps=8, baseline="zero")
    reverse = insertion(model, x, -x, target, steps=8, baseline="zero")
    assert (perfect.curve >= reverse.curve - 1e-12).all()
    assert (perfect.auc > reverse.auc).all()
    torch.testing.assert_close(perfect.curve[:, 0], torch.full((len(x),), 0.5, dtype=torch.float64))
    torch.testing.assert_close(perfect.curve[:, -1], torch.sigmoid(x.reshape(len(x), -1).sum(1)))


def _naive_curve(model, x, attribution, target, steps, substrate, kind, patch=1):
    """The RISE definition, one image at a time: rank pixels (channel-summed attribution,
    ties in position order) or patches of side ``patch`` (summed attribution; Samek et al.
    2017), change the top k, evaluate, integrate with the trapezoid rule."""
    aucs, curves = [], []
    b, c, *spatial = x.shape
    coords = list(itertools.product(*[range(n) for n in spatial]))  # row-major, like reshape
    grid = [math.ceil(n / patch) for n in spatial]
    units = list(itertools.product(*[range(g) for g in grid]))
    members = {u: [p for p, pos in enumerate(coords) if tuple(q // patch for q in pos) == u] for u in units}
    n = len(units)
    for i in range(b):
        sal = attribution[i].sum(0).reshape(-1).numpy()
        unit_sal = [sum(sal[p] for p in members[u]) for u in units]
        order = sorted(range(n), key=lambda u: (-unit_sal[u], u))
        curve, fracs = [], []
        for step in range(steps + 1):
            k = int(round(step * n / steps))
            start = x[i].clone() if kind == "deletion" else substrate[i].clone()
            source = substrate[i] if kind == "deletion" else x[i]
            flat_start = start.reshape(c, -1)
            flat_source = source.reshape(c, -1)
            for u in order[:k]:
                for p in members[units[u]]:
                    flat_start[:, p] = flat_source[:, p]
            with torch.no_grad():
                prob = torch.softmax(model(start[None]), dim=1)[0, int(target[i])]
            curve.append(float(prob))
            fracs.append(k / n)
        curves.append(curve)
        aucs.append(np.trapezoid(curve, fracs) if hasattr(np, "trapezoid") else np.trapz(curve, fracs))
    return np.array(aucs), np.array(curves)


@pytest.mark.parametrize("kind", ["deletion", "insertion"])
def test_batched_curves_match_naive_reference(spatial_dims, kind):
    model, x = make_model(spatial_dims), make_input(spatial_dims, batch=2)
    attribution = torch.randn(x.shape, generator=torch.Generator().manual_seed(5), dtype=x.dtype)
    target = torch.tensor([0, 2])
    fn = deletion if kind == "deletion" else insertion
    baseline = "zero" if kind == "deletion" else "blur"
    fast = fn(model, x, attribution, target, steps=7, baseline=baseline, batch_size=3)
    substrate = reference_input(x, baseline)
    auc, curve = _naive_curve(model, x, attribution, target, 7, substrate, kind)
    np.testing.assert_allclose(fast.curve.numpy(), curve, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fast.auc.numpy(), auc, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("spatial_dims,patch", [(1, 5), (2, 5), (3, 4)])
def test_patch_curves_match_naive_reference(spatial_dims, patch):
    """Region perturbation with patches that do not divide the size (cut at the border)."""
    model, x = make_model(spatial_dims), make_input(spatial_dims, batch=2)
    attribution = torch.randn(x.shape, generator=torch.Generator().manual_seed(6), dtype=x.dtype)
    target = torch.tensor([1, 0])
    fast = deletion(model, x, attribution, target, steps=6, baseline="blur", patch=patch)
    auc, curve = _naive_curve(model, x, attribution, target, 6, reference_input(x, "blur"), "deletion", patch=patch)
    np.testing.assert_allclose(fast.curve.numpy(), curve, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fast.auc.numpy(), auc, rtol=1e-9, atol=1e-12)


def test_chunking_does_not_change_the_curve():
    model, x = make_model(2), make_input(2, batch=3)
    a = deletion(model, x, x, steps=5, batch_size=1)
    b = deletion(model, x, x, steps=5, batch_size=64)
    torch.testing.assert_close(a.curve, b.curve)


def test_layer_resolution_attribution_is_upsampled_and_attribution_target_used():
    import medlens

    model, x = make_model(2), make_input(2, batch=2)
    attr = medlens.explain(model, x, target=[1, 2], method="gradient")
    coarse = torch.nn.functional.avg_pool2d(attr.values, 4)  # (B, 1, 6, 6): a layer-resolution map
    res = deletion(model, x, coarse, [1, 2], steps=4)
    assert res.curve.shape == (2, 5)
    # the Attribution's own target is used when none is given
    torch.testing.assert_close(deletion(model, x, attr, steps=4).auc, deletion(model, x, attr.values, [1, 2], steps=4).auc)


def test_reference_inputs():
    x = make_input(2, batch=2)
    assert (reference_input(x, "zero") == 0).all()
    torch.testing.assert_close(reference_input(x, "mean")[:, :, 0, 0], x.mean(dim=(2, 3)))
    assert (reference_input(x, 0.25) == 0.25).all()
    blurred = reference_input(x, "blur")
    assert blurred.shape == x.shape and blurred.std() < x.std()
    constant = torch.ones_like(x)
    torch.testing.assert_close(reference_input(constant, "blur"), constant)


@pytest.mark.parametrize(
    "kwargs",
    [dict(steps=0), dict(steps=10**6), dict(baseline="nonsense"), dict(baseline=torch.zeros(5)), dict(patch=0),
     dict(patch=(2, 2, 2)), dict(steps=40, patch=4)],
)
def test_bad_faithfulness_arguments(kwargs):
    model, x = make_model(2), make_input(2, batch=2)
    with pytest.raises(InputError):
        deletion(model, x, x, **kwargs)


def test_attribution_shape_mismatch_is_an_input_error():
    model, x = make_model(2), make_input(2, batch=2)
    with pytest.raises(InputError):
        deletion(model, x, torch.zeros(2, 1, 24), steps=4)


# --------------------------------------------------------------------------------------------
# Localisation
# --------------------------------------------------------------------------------------------


def _blob_masks(spatial_dims: int, batch: int = 3) -> torch.Tensor:
    spatial = SHAPES[spatial_dims][1:]
    masks = torch.zeros(batch, *spatial, dtype=torch.bool)
    for i in range(batch):
        idx = tuple(slice(2 + i, 5 + i) for _ in spatial)
        masks[(i,) + idx] = True
    return masks


def test_mask_scored_against_itself(spatial_dims):
    masks = _blob_masks(spatial_dims)
    attribution = masks[:, None].double()
    # strictly varying inside the mask, so the maximum is unique
    bump = attribution + 0.01 * torch.rand(attribution.shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * attribution
    assert (pointing_game(bump, masks) == 1).all()
    assert (pointing_game(attribution, masks) == 1).all()  # ties all inside the mask
    torch.testing.assert_close(mass_in_mask(attribution, masks), torch.ones(3, dtype=torch.float64))
    frac = masks[0].sum().item() / masks[0].numel()
    torch.testing.assert_close(iou_at(attribution, masks, threshold=frac), torch.ones(3, dtype=torch.float64))
    torch.testing.assert_close(iou_at(attribution, masks, threshold="otsu"), torch.ones(3, dtype=torch.float64))
    # the complement misses everything
    other = (~masks)[:, None].double()
    assert (pointing_game(other, masks) == 0).all()
    assert (mass_in_mask(other, masks) == 0).all()


def test_pointing_game_tolerance_and_ties():
    mask = torch.zeros(1, 10, 10, dtype=torch.bool)
    mask[0, 4:6, 4:6] = True
    attr = torch.zeros(1, 1, 10, 10)
    attr[0, 0, 4, 7] = 1.0  # two pixels right of the mask
    assert pointing_game(attr, mask).item() == 0
    assert pointing_game(attr, mask, tolerance=1.5).item() == 0
    assert pointing_game(attr, mask, tolerance=2.0).item() == 1
    flat = torch.ones(1, 1, 10, 10)  # a constant map wins only by chance: 4 of 100 positions
    assert pointing_game(flat, mask).item() == pytest.approx(0.04)
    empty = torch.zeros_like(mask)
    assert math.isnan(pointing_game(attr, empty).item())
    assert math.isnan(mass_in_mask(attr, empty).item())
    assert math.isnan(iou_at(attr, empty).item())


def test_dilate_is_a_euclidean_ball(spatial_dims):
    spatial = SHAPES[spatial_dims][1:]
    point = torch.zeros(1, *spatial, dtype=torch.bool)
    centre = tuple(s // 2 for s in spatial)
    point[(0,) + centre] = True
    grown = dilate(point, 2.0)[0]
    coords = torch.stack(torch.meshgrid(*[torch.arange(s) for s in spatial], indexing="ij"), -1).double()
    dist = (coords - torch.tensor(centre, dtype=torch.float64)).norm(dim=-1)
    assert torch.equal(grown, dist <= 2.0)


def test_mass_in_mask_known_value_and_negative_values_ignored():
    mask = torch.tensor([[True, False, False, False]])
    attr = torch.tensor([[[3.0, 1.0, -5.0, 0.0]]])
    assert mass_in_mask(attr, mask).item() == pytest.approx(0.75)
    assert mass_in_mask(attr, mask, abs=True).item() == pytest.approx(3 / 9)


def test_iou_top_fraction_known_value():
    mask = torch.tensor([[True, True, False, False, False, False, False, False]])
    attr = torch.tensor([[[5.0, 1.0, 4.0, 0.0, 0.0, 0.0, 0.0, 0.0]]])
    # top 25 % = positions 0 and 2: intersection 1, union 3
    assert iou_at(attr, mask, threshold=0.25).item() == pytest.approx(1 / 3)
    with pytest.raises(InputError):
        iou_at(attr, mask, threshold=1.5)


def test_otsu_separates_two_modes():
    gen = torch.Generator().manual_seed(0)
    low = 0.2 + 0.02 * torch.randn(300, generator=gen, dtype=torch.float64)
    high = 0.8 + 0.02 * torch.randn(100, generator=gen, dtype=torch.float64)
    t = otsu_threshold(torch.cat([low, high])[None])
    assert low.max() < t.item() < high.min()
    assert otsu_threshold(torch.ones(1, 5)).item() == 1.0


def test_localisation_rejects_mismatched_masks():
    with pytest.raises(InputError):
        pointing_game(torch.zeros(2, 1, 8, 8), torch.zeros(3, 8, 8, dtype=torch.bool))


# --------------------------------------------------------------------------------------------
# Similarity: Spearman and SSIM
# --------------------------------------------------------------------------------------------


def test_rankdata_and_spearman_match_scipy():
    gen = torch.Generator().manual_seed(0)
    a = torch.randint(0, 6, (5, 40), generator=gen).double()  # many ties
    b = a + torch.randn(5, 40, generator=gen, dtype=torch.float64) * 2
    ranks = rankdata(a)
    for i in range(5):
        np.testing.assert_allclose(ranks[i].numpy(), scipy.stats.rankdata(a[i].numpy()))
        expected = scipy.stats.spearmanr(a[i].numpy(), b[i].numpy()).statistic
        assert spearman(a[i : i + 1], b[i : i + 1]).item() == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(
        spearman(a.view(5, 1, 5, 8), b.view(5, 1, 5, 8)).numpy(),
        [scipy.stats.spearmanr(a[i].numpy(), b[i].numpy()).statistic for i in range(5)],
        atol=1e-12,
    )
    assert spearman(a, a).tolist() == pytest.approx([1.0] * 5)
    assert spearman(a, -a).tolist() == pytest.approx([-1.0] * 5)
    assert math.isnan(spearman(torch.ones(1, 4), torch.arange(4.0)[None]).item())


def _naive_ssim(a: np.ndarray, b: np.ndarray, sigma: float, radius: int, c1: float, c2: float) -> float:
    """Wang et al. (2004) from the definition: Gaussian-weighted statistics in every window
    that fits entirely inside the map, SSIM per window, averaged."""
    t = np.arange(-radius, radius + 1)
    g = np.exp(-0.5 * (t / sigma) ** 2)
    g = g / g.sum()
    w = g
    for _ in range(a.ndim - 1):
        w = np.multiply.outer(w, g)
    size = 2 * radius + 1
    values = []
    for corner in itertools.product(*[range(n - size + 1) for n in a.shape]):
        sl = tuple(slice(c, c + size) for c in corner)
        x, y = a[sl], b[sl]
        mx, my = (w * x).sum(), (w * y).sum()
        vx, vy = (w * (x - mx) ** 2).sum(), (w * (y - my) ** 2).sum()
        cov = (w * (x - mx) * (y - my)).sum()
        values.append(((2 * mx * my + c1) * (2 * cov + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


@pytest.mark.parametrize("shape", [(40,), (16, 18), (9, 10, 11)])
def test_ssim_matches_naive_definition(shape):
    gen = torch.Generator().manual_seed(1)
    a = torch.rand(2, *shape, generator=gen, dtype=torch.float64)
    b = (a + 0.3 * torch.rand(2, *shape, generator=gen, dtype=torch.float64)).clamp(0, 1)
    sigma = 1.5 if len(shape) < 3 else 1.0
    fast = ssim(a, b, sigma=sigma, data_range=1.0)
    radius = min(round(3.5 * sigma), (min(shape) - 1) // 2)
    for i in range(2):
        expected = _naive_ssim(a[i].numpy(), b[i].numpy(), sigma, radius, 0.01**2, 0.03**2)
        assert fast[i].item() == pytest.approx(expected, rel=1e-9)


def test_ssim_known_values():
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(3, 20, 20, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(ssim(x, x), torch.ones(3, dtype=torch.float64))
    noisy = x + 0.5 * torch.randn(x.shape, generator=gen, dtype=torch.float64)
    assert (ssim(x, noisy) < 0.6).all()
    torch.testing.assert_close(ssim(x, noisy), ssim(noisy, x))
    # two constant maps of different values: luminance term only, closed form
    c1 = 0.01**2
    a, b = torch.full((1, 16, 16), 0.2, dtype=torch.float64), torch.full((1, 16, 16), 0.6, dtype=torch.float64)
    expected = (2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1)
    assert ssim(a, b, data_range=1.0).item() == pytest.approx(expected)
    # min-max normalisation makes SSIM invariant to scaling a map
    torch.testing.assert_close(ssim(x, noisy), ssim(5 * x + 2, noisy))


# --------------------------------------------------------------------------------------------
# Robustness
# --------------------------------------------------------------------------------------------


def test_max_sensitivity_closed_forms(spatial_dims):
    x = make_input(spatial_dims, batch=3)
    # a linear model has a constant gradient: the gradient map never changes
    linear = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 3)).double()
    assert torch.allclose(max_sensitivity(linear, x, 0, "gradient", radius=0.1), torch.zeros(3, dtype=torch.float64))
    # explaining with the input itself: the change is the noise, |delta|_2 <= r sqrt(P) per sample
    radius = 0.05

    def identity(_model, xs, _t):
        return xs

    sens = max_sensitivity(linear, x, 0, identity, radius=radius, relative_radius=False, n_samples=3)
    bound = radius * math.sqrt(x[0].numel()) / x.reshape(3, -1).norm(dim=1)
    assert (sens > 0).all() and (sens <= bound + 1e-12).all()
    # more draws can only raise the maximum (the first draws are shared)
    more = max_sensitivity(linear, x, 0, identity, radius=radius, relative_radius=False, n_samples=6)
    assert (more >= sens - 1e-12).all()


def test_max_sensitivity_is_seeded_per_sample():
    model, x = make_model(2), make_input(2, batch=4)
    full = max_sensitivity(model, x, method="gradient", n_samples=2, sample_ids=torch.arange(4))
    part = max_sensitivity(model, x[2:], method="gradient", n_samples=2, sample_ids=torch.arange(2, 4))
    torch.testing.assert_close(full[2:], part)


# --------------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------------


def test_baselines(spatial_dims):
    x = make_input(spatial_dims, batch=4)
    spatial = x.shape[2:]
    r = random_attribution(x, seed=3, sample_ids=torch.arange(4))
    assert r.shape == (4, 1, *spatial)
    torch.testing.assert_close(r[2:], random_attribution(x[2:], seed=3, sample_ids=torch.tensor([2, 3])))
    assert not torch.equal(r[0], r[1])
    c = centre_attribution(x)
    centre = tuple(s // 2 for s in spatial)
    assert c[(0, 0) + centre] > 0.8 and c[(0, 0) + (0,) * len(spatial)] == pytest.approx(0.0)
    step = torch.zeros(1, 1, *spatial, dtype=torch.float64)
    step[(0, 0, slice(spatial[0] // 2, None))] = 1.0
    e = edge_attribution(step)[0, 0]
    profile = e.reshape(spatial[0], -1).mean(1)
    assert int(profile.argmax()) in (spatial[0] // 2 - 1, spatial[0] // 2)
