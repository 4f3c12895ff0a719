"""DeepTune: what stimulus drives a (model of a) neuron.

Abbasi-Asl, Chen, Bloniarz, Oliver, Willmore, Gallant and Yu, "The DeepTune framework for
modeling and characterizing neurons in visual cortex area V4", bioRxiv 2018 (section 4 of the
reference survey). The recipe:

1. take the features of several CNNs (an ensemble) at an intermediate layer;
2. fit a regularised linear regression per neuron and per ensemble member from the features of
   the stimuli to the neuron's recorded responses (:func:`fit_ridge`, :func:`fit_deeptune`);
   prediction accuracy is the correlation with responses to held-out stimuli;
3. visualise each fitted model by activation maximisation of its predicted response (the DeepTune
   image; rendered with :mod:`medlens.featurevis` on :meth:`DeepTuneFit.member_model` or
   :meth:`DeepTuneFit.consensus_model`, which :mod:`medlens.app.systems` composes);
4. pool over the ensemble so that only what the members agree on remains: the consensus model
   predicts the mean of the members' standardised predictions, and its maximiser is the
   consensus DeepTune image.

:func:`best_shift_ncc` scores an image against a neuron's known preferred stimulus (normalised
cross-correlation at the best shift, :mod:`medlens.data.synthetic.simulated_neurons` supplies the ground
truth).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import torch
from torch import nn

from medlens.core.random import derive_seed, generator
from medlens.core import engine
from medlens.core.engine import Budget
from medlens.errors import InputError

DEFAULT_LAMBDAS = tuple(10.0 ** k for k in range(-1, 6))


def pearson(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Column-wise Pearson correlation of ``a`` and ``b`` ``(N, K)``: ``(K,)`` (0 for constant columns)."""
    a = a.double() - a.double().mean(0)
    b = b.double() - b.double().mean(0)
    den = a.norm(dim=0) * b.norm(dim=0)
    return torch.where(den > 0, (a * b).sum(0) / den.clamp_min(1e-300), torch.zeros_like(den))


@dataclass
class RidgeFit:
    """A ridge regression from standardised features to several responses.

    ``prediction = ((features - mean) / scale) @ weights + bias``.

    Attributes
    ----------
    weights : torch.Tensor
        ``(D, K)`` float64.
    bias, lambdas, val_correlation : torch.Tensor
        ``(K,)``: intercept, the chosen penalty, and the validation correlation it reached.
    mean, scale : torch.Tensor
        ``(D,)`` feature standardisation from the training rows.
    """

    weights: torch.Tensor
    bias: torch.Tensor
    mean: torch.Tensor
    scale: torch.Tensor
    lambdas: torch.Tensor
    val_correlation: torch.Tensor

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """``(N, D)`` features -> ``(N, K)`` predictions."""
        z = (features.double() - self.mean) / self.scale
        return z @ self.weights + self.bias


def _dual_solutions(gram_eigs: tuple[torch.Tensor, torch.Tensor], y: torch.Tensor, lam: float) -> torch.Tensor:
    """Dual coefficients ``(K_gram + lam I)^-1 y`` from the Gram matrix's eigendecomposition."""
    s, u = gram_eigs
    return u @ ((u.T @ y) / (s + lam)[:, None])


def fit_ridge(
    features: torch.Tensor, targets: torch.Tensor, *, lambdas: Sequence[float] = DEFAULT_LAMBDAS,
    val_fraction: float = 0.2, seed: int = 0,
) -> RidgeFit:
    """Ridge regression per target, the penalty chosen on a validation split.

    Solved in the dual (``w = Z^T (Z Z^T + lam I)^-1 y`` with standardised features ``Z``), so
    that thousands of features cost no more than the number of rows; one eigendecomposition of
    the Gram matrix serves every penalty. The penalty of each target maximises the correlation
    on a random ``val_fraction`` of the rows; the model is then refitted on all rows.

    Parameters
    ----------
    features : torch.Tensor
        ``(N, D)``.
    targets : torch.Tensor
        ``(N, K)`` responses.
    lambdas : sequence of float
        Candidate penalties (on the sum of squared errors, with standardised features).
    val_fraction : float
    seed : int
        Seeds the validation split.

    Returns
    -------
    RidgeFit
    """
    x, y = features.double(), targets.double()
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise InputError(f"fit_ridge needs features (N, D) and targets (N, K), got {tuple(x.shape)} and {tuple(y.shape)}")
    if len(x) < 5 or not 0 < val_fraction < 1:
        raise InputError(f"fit_ridge needs at least 5 rows and 0 < val_fraction < 1, got {len(x)} rows, {val_fraction}")
    if not torch.isfinite(x).all() or not torch.isfinite(y).all():
        raise InputError("features and targets must be finite")
    lams = torch.tensor([float(v) for v in lambdas], dtype=torch.float64)
    mean, scale = x.mean(0), x.std(0).clamp_min(1e-8)
    z = (x - mean) / scale
    n = len(z)
    order = torch.randperm(n, generator=generator(seed, "ridge folds"))
    n_val = max(1, int(round(n * val_fraction)))
    val, fit = order[:n_val], order[n_val:]
    # choose the penalty on the validation rows
    zf, yf = z[fit], y[fit]
    yf_mean = yf.mean(0)
    eigs = torch.linalg.eigh(zf @ zf.T)
    cross = z[val] @ zf.T  # (n_val, n_fit)
    scores = torch.stack([
        pearson(cross @ _dual_solutions(eigs, yf - yf_mean, float(lam)) + yf_mean, y[val]) for lam in lams
    ])  # (L, K)
    best = scores.argmax(0)  # (K,)
    chosen = lams[best]
    # refit on every row with each target's penalty
    y_mean = y.mean(0)
    eigs = torch.linalg.eigh(z @ z.T)
    weights = torch.empty(z.shape[1], y.shape[1], dtype=torch.float64)
    for lam in chosen.unique():
        cols = (chosen == lam).nonzero().flatten()
        weights[:, cols] = z.T @ _dual_solutions(eigs, y[:, cols] - y_mean[cols], float(lam))
    return RidgeFit(weights, y_mean, mean, scale, chosen, scores.max(0).values)


class Readout(nn.Module):
    """A CNN trunk followed by a fitted linear readout: the model of the neurons.

    Input ``(B, C, *spatial)``; output ``(B, K)`` predicted responses of the ``K`` neurons. The
    feature standardisation is folded into the linear layer.
    """

    def __init__(self, trunk: nn.Module, fit: RidgeFit) -> None:
        super().__init__()
        self.trunk = trunk
        w = fit.weights / fit.scale[:, None]  # (D, K): acts on raw features
        b = fit.bias - fit.mean @ w
        dtype = next(trunk.parameters()).dtype
        self.linear = nn.Linear(w.shape[0], w.shape[1]).to(dtype)
        with torch.no_grad():
            self.linear.weight.copy_(w.T.to(dtype))
            self.linear.bias.copy_(b.to(dtype))
        self.input_shape = getattr(trunk, "input_shape", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.trunk(x).flatten(1))


class Consensus(nn.Module):
    """Mean of the members' standardised predictions: ``(B, K)``.

    Member ``m``'s prediction for neuron ``k`` is divided by its standard deviation over the
    training stimuli, so that no member dominates by scale; raising the mean requires a stimulus
    that several members predict to drive the neuron.
    """

    def __init__(self, readouts: Sequence[Readout], scales: torch.Tensor) -> None:
        super().__init__()
        self.readouts = nn.ModuleList(readouts)
        self.register_buffer("inv_scale", 1.0 / scales.clamp_min(1e-12))  # (M, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        preds = torch.stack([r(x) for r in self.readouts], 1)  # (B, M, K)
        return (preds * self.inv_scale.to(preds.dtype)).mean(1)


def feature_trunk(model: nn.Module, blocks: int) -> nn.Module:
    """The first ``blocks`` blocks of a medlens CNN's ``features`` (a frozen copy, eval mode)."""
    import copy

    feats = getattr(model, "features", None)
    if not isinstance(feats, nn.Sequential) or not 1 <= blocks <= len(feats):
        raise InputError(f"feature_trunk needs a medlens CNN with at least {blocks} feature blocks")
    trunk = nn.Sequential(*copy.deepcopy(list(feats.children())[:blocks])).eval()
    for p in trunk.parameters():
        p.requires_grad_(False)
    trunk.input_shape = getattr(model, "input_shape", None)
    return trunk


def features_of(trunk: nn.Module, images: torch.Tensor, *, batch_size: int | None = None,
                memory_mb: float | None = None) -> torch.Tensor:
    """Flattened trunk outputs ``(N, D)`` float64, run through the batched engine."""
    flat = nn.Sequential(trunk, nn.Flatten()).eval()
    dtype = next(trunk.parameters()).dtype
    with torch.no_grad():
        return engine.forward(flat, images.to(dtype), Budget(batch_size, memory_mb)).double()


@dataclass
class DeepTuneFit:
    """Fitted DeepTune models of several neurons for an ensemble of CNNs.

    Attributes
    ----------
    readouts : list of Readout
        One per ensemble member, each predicting all ``K`` neurons.
    ridge : list of RidgeFit
    test_index : torch.Tensor
        Rows of the stimulus set held out from fitting.
    member_correlation : torch.Tensor
        ``(M, K)``: correlation of each member's prediction with the recorded responses to the
        held-out stimuli.
    consensus_correlation : torch.Tensor
        ``(K,)``: the same for the consensus model.
    member_scale : torch.Tensor
        ``(M, K)``: standard deviation of each member's predictions over the training stimuli.
    """

    readouts: list
    ridge: list
    test_index: torch.Tensor
    member_correlation: torch.Tensor
    consensus_correlation: torch.Tensor
    member_scale: torch.Tensor = field(repr=False)

    def member_model(self, m: int) -> Readout:
        """Member ``m``'s model of the neurons: ``(B, C, *spatial) -> (B, K)``."""
        return self.readouts[m]

    def consensus_model(self) -> Consensus:
        """The ensemble-pooled model: mean standardised prediction ``(B, K)``."""
        return Consensus(self.readouts, self.member_scale).eval()


def fit_deeptune(
    members: Sequence[nn.Module], images: torch.Tensor, responses: torch.Tensor, *, blocks: int = 2,
    test_fraction: float = 0.2, lambdas: Sequence[float] = DEFAULT_LAMBDAS, seed: int = 0,
    batch_size: int | None = None, memory_mb: float | None = None,
) -> DeepTuneFit:
    """Fit a ridge readout per neuron on each member's features; measure held-out accuracy.

    Parameters
    ----------
    members : sequence of nn.Module
        The ensemble: medlens CNNs (different seeds or widths); their first ``blocks`` feature
        blocks are the regressors.
    images : torch.Tensor
        Stimuli ``(N, C, *spatial)``.
    responses : torch.Tensor
        Recorded responses ``(N, K)``.
    blocks : int
        Depth of the feature layer (number of CNN blocks).
    test_fraction : float
        Share of the stimuli held out to measure prediction accuracy.
    seed : int
        Seeds the held-out split and the validation splits of the penalty.

    Returns
    -------
    DeepTuneFit
    """
    if not members:
        raise InputError("fit_deeptune needs at least one ensemble member")
    if responses.ndim != 2 or len(responses) != len(images):
        raise InputError(f"responses must be (N, K) with N = {len(images)} stimuli, got {tuple(responses.shape)}")
    n = len(images)
    order = torch.randperm(n, generator=generator(seed, "split"))
    n_test = max(2, int(round(n * test_fraction)))
    test, train = order[:n_test], order[n_test:]
    y = responses.double()
    readouts, fits, corr, scales, test_preds = [], [], [], [], []
    for m, member in enumerate(members):
        trunk = feature_trunk(member, blocks)
        f = features_of(trunk, images, batch_size=batch_size, memory_mb=memory_mb)
        fit = fit_ridge(f[train], y[train], lambdas=lambdas, seed=derive_seed(seed, "ridge", m))
        pred = fit.predict(f)
        readouts.append(Readout(trunk, fit).eval())
        fits.append(fit)
        corr.append(pearson(pred[test], y[test]))
        scales.append(pred[train].std(0))
        test_preds.append(pred[test])
    member_scale = torch.stack(scales)  # (M, K)
    consensus = torch.stack([p / s for p, s in zip(test_preds, member_scale)]).mean(0)
    return DeepTuneFit(readouts, fits, test, torch.stack(corr), pearson(consensus, y[test]), member_scale)


def best_shift_ncc(
    image: torch.Tensor, template: torch.Tensor, *, max_shift: int = 4, polarity_free: bool = False,
    support: float = 0.05,
) -> float:
    """Normalised cross-correlation of ``image`` with ``template`` at the best shift.

    The template's support (the bounding box of where its magnitude exceeds
    ``support`` of the maximum) is a window; for every shift of the window up to ``max_shift``
    pixels along each axis, the image patch under it and the template are mean-centred and
    their cosine taken (template matching as in Lewis, "Fast normalized cross-correlation",
    1995). Returns the best value.

    Parameters
    ----------
    image, template : torch.Tensor
        ``(1, H, W)`` or ``(H, W)`` of the same size.
    max_shift : int
    polarity_free : bool
        Score ``|NCC|``: for units blind to contrast polarity (complex cells).
    support : float
        Relative magnitude that delimits the template's window.

    Returns
    -------
    float
        In ``[-1, 1]``.
    """
    img = image.double().reshape(image.shape[-2:])
    tpl = template.double().reshape(template.shape[-2:])
    if img.shape != tpl.shape:
        raise InputError(f"image {tuple(img.shape)} and template {tuple(tpl.shape)} differ in size")
    mag = tpl.abs()
    mask = mag >= support * mag.max()
    rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    t = tpl[y0:y1, x0:x1]
    t = t - t.mean()
    h, w = img.shape
    best = -2.0
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            if y0 + dy < 0 or x0 + dx < 0 or y1 + dy > h or x1 + dx > w:
                continue
            p = img[y0 + dy : y1 + dy, x0 + dx : x1 + dx]
            p = p - p.mean()
            den = float(p.norm() * t.norm())
            v = float((p * t).sum()) / den if den > 0 else 0.0
            best = max(best, abs(v) if polarity_free else v)
    return best
