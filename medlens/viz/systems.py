"""Pictures of the representation systems: DeepTune images, SciNet latent traversals, GroupINN
group-to-group connections. They take results (tensors, numbers, names) and run no model."""

from __future__ import annotations

from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from medlens.viz.colours import SIGNED_CMAP  # noqa: E402


def _np(x: torch.Tensor | np.ndarray) -> np.ndarray:
    return x.detach().double().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)


def _show(ax, image: np.ndarray, title: str = "", signed: bool = False) -> None:
    img = image.reshape(image.shape[-2:])
    if signed:
        m = float(np.abs(img).max()) or 1.0
        ax.imshow(img, cmap=SIGNED_CMAP, vmin=-m, vmax=m)
    else:
        lo, hi = float(img.min()), float(img.max())
        ax.imshow(img, cmap="gray", vmin=lo, vmax=hi if hi > lo else lo + 1)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=7)


def deeptune_figure(
    preferred: torch.Tensor, consensus: torch.Tensor, members: torch.Tensor, names: Sequence[str],
    consensus_similarity: torch.Tensor, member_similarity: torch.Tensor,
) -> "plt.Figure":
    """One row per neuron: true preferred stimulus, consensus DeepTune image, each member's image.

    Parameters
    ----------
    preferred, consensus : torch.Tensor
        ``(K, 1, H, W)``.
    members : torch.Tensor
        ``(M, K, 1, H, W)``.
    consensus_similarity : torch.Tensor
        ``(K,)``; ``member_similarity`` ``(M, K)``: captions.
    """
    k, m = preferred.shape[0], members.shape[0]
    fig, axes = plt.subplots(k, m + 2, figsize=(1.3 * (m + 2), 1.35 * k + 0.3), squeeze=False)
    for i in range(k):
        _show(axes[i, 0], _np(preferred[i]), "true preferred" if i == 0 else "", signed=True)
        axes[i, 0].set_ylabel(str(names[i])[:28], fontsize=6)
        _show(axes[i, 1], _np(consensus[i]), f"consensus {float(consensus_similarity[i]):.2f}")
        for j in range(m):
            _show(axes[i, 2 + j], _np(members[j, i]), f"member {j + 1} {float(member_similarity[j, i]):.2f}")
    fig.suptitle("DeepTune images (numbers: NCC with the true preferred stimulus at the best shift)", fontsize=8)
    fig.tight_layout()
    return fig


def traversal_figure(
    values: torch.Tensor, traversal: torch.Tensor, grid: torch.Tensor, reference: torch.Tensor,
    kl: torch.Tensor, labels: Sequence[str] = (),
) -> "plt.Figure":
    """One panel per latent neuron: decoded answers over the question grid as the neuron sweeps.

    Parameters
    ----------
    values : torch.Tensor
        ``(L, V)`` swept values; ``traversal`` ``(L, V, Q)`` decoded answers; ``grid`` ``(Q,)``;
        ``reference`` ``(Q,)`` the true series of the reference observation; ``kl`` ``(L,)``.
    labels : sequence of str
        What each neuron was found to hold (e.g. ``"kappa (|r| 0.99)"``).
    """
    n_latent, n_values = values.shape
    fig, axes = plt.subplots(1, n_latent, figsize=(3.2 * n_latent, 2.6), squeeze=False, sharey=True)
    colours = plt.cm.viridis(np.linspace(0, 1, n_values))
    g = _np(grid)
    for j in range(n_latent):
        ax = axes[0, j]
        ax.plot(g, _np(reference), color="k", lw=2.5, alpha=0.25, label="true series")
        for v in range(n_values):
            ax.plot(g, _np(traversal[j, v]), color=colours[v], lw=1.2, label=f"z={float(values[j, v]):+.2f}")
        label = labels[j] if j < len(labels) and labels[j] else ""
        ax.set_title(f"neuron {j} (KL {float(kl[j]):.2f} nats)" + (f"\n{label}" if label else ""), fontsize=8)
        ax.set_xlabel("question: time t", fontsize=8)
        ax.tick_params(labelsize=7)
        if j == 0:
            ax.set_ylabel("answer: x(t)", fontsize=8)
        ax.legend(fontsize=5, loc="upper right")
    fig.tight_layout()
    return fig


def latent_scatter_figure(latents: torch.Tensor, parameters: torch.Tensor, parameter_names: Sequence[str],
                          best_neuron: torch.Tensor, best_correlation: torch.Tensor) -> "plt.Figure":
    """Each generating parameter against its best latent neuron (held-out observations)."""
    p = parameters.shape[1]
    fig, axes = plt.subplots(1, p, figsize=(3.0 * p, 2.6), squeeze=False)
    for i in range(p):
        ax = axes[0, i]
        j = int(best_neuron[i])
        ax.scatter(_np(parameters[:, i]), _np(latents[:, j]), s=3, alpha=0.4)
        ax.set_xlabel(str(parameter_names[i]), fontsize=8)
        ax.set_ylabel(f"latent neuron {j}", fontsize=8)
        ax.set_title(f"|r| = {float(best_correlation[i]):.3f}", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def group_connections_figure(relevance: torch.Tensor, planted_difference: torch.Tensor) -> "plt.Figure":
    """Which group-to-group connections drive GroupINN's decision, next to the planted truth.

    Parameters
    ----------
    relevance : torch.Tensor
        ``(2, G, G)`` relevance of the positive and negative grouped graphs (planted-group order).
    planted_difference : torch.Tensor
        ``(G, G)`` class-1 minus class-0 mean connectivity between planted groups.
    """
    panels = [(_np(relevance[0]), "relevance: positive connectivity"),
              (_np(relevance[1]), "relevance: negative connectivity"),
              (_np(planted_difference), "planted: class 1 - class 0")]
    g = relevance.shape[-1]
    fig, axes = plt.subplots(1, 3, figsize=(9.6, 3.0))
    for ax, (mat, title) in zip(axes, panels):
        m = float(np.abs(mat).max()) or 1.0
        im = ax.imshow(mat, cmap=SIGNED_CMAP, vmin=-m, vmax=m)
        ax.set_title(title, fontsize=8)
        ax.set_xticks(range(g))
        ax.set_yticks(range(g))
        ax.set_xlabel("group", fontsize=7)
        ax.set_ylabel("group", fontsize=7)
        ax.tick_params(labelsize=7)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(labelsize=6)
    fig.tight_layout()
    return fig
