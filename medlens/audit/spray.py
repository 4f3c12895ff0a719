"""Spectral relevance analysis (SpRAy): the prediction strategies of a model, as clusters of maps.

Lapuschkin, Wäldchen, Binder, Montavon, Samek and Müller, "Unmasking Clever Hans predictors and
assessing what machines really learn", Nature Communications 10:1096 (2019): the attribution
maps of one class, downsized, are clustered by spectral clustering; the eigengap of the graph
Laplacian says how many prediction strategies there are; a small cluster whose relevance sits
on an artefact (a copyright tag, a hospital marker) is a *Clever Hans* strategy. CoRelAy and
ViRelAy (Anders et al., "Finding and removing Clever Hans", Information Fusion 2022) run the same
pipeline at scale.

The graph is sparse, so that tens of thousands of maps cluster in seconds: a k-nearest-neighbour
graph (k-d tree), Gaussian affinities with local scaling (Zelnik-Manor and Perona, "Self-tuning
spectral clustering", NIPS 2004), the normalised Laplacian ``L = I - D^-1/2 W D^-1/2`` (Ng,
Jordan and Weiss, "On spectral clustering", NIPS 2002), its smallest eigenvalues from a sparse
eigensolver (ARPACK through :func:`scipy.sparse.linalg.eigsh`), the number of clusters at the
largest eigengap, and k-means (k-means++ seeding, several restarts, a seeded generator) on the
row-normalised eigenvectors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from medlens.errors import InputError
from medlens.core.partitions import adjusted_rand_index  # re-exported: one implementation

__all__ = ["Clustering", "adjusted_rand_index", "knn_affinity", "spectral_clusters", "kmeans"]

MAX_CLUSTERS = 8
DENSE_LIMIT = 400  # below this many cases the dense eigensolver is faster and exact


@dataclass(frozen=True)
class Clustering:
    """Result of :func:`spectral_clusters`.

    Attributes
    ----------
    labels : torch.Tensor
        ``(N,)`` int64 cluster of each case, clusters numbered by decreasing size.
    n_clusters : int
    eigenvalues : torch.Tensor
        ``(m,)`` smallest eigenvalues of the normalised Laplacian, ascending (``m`` is at most
        ``max_clusters + 1``).
    embedding : torch.Tensor
        ``(N, 2)`` spectral embedding of the cases (the Laplacian eigenvectors 2 and 3, scaled
        by ``D^-1/2``), for plotting.
    eigengap : float
        ``eigenvalues[n_clusters] - eigenvalues[n_clusters - 1]`` (0 when undefined).
    """

    labels: torch.Tensor
    n_clusters: int
    eigenvalues: torch.Tensor
    embedding: torch.Tensor
    eigengap: float


def knn_affinity(points: np.ndarray, k: int):
    """Sparse symmetric affinity matrix of the ``k``-nearest-neighbour graph.

    ``w_ij = exp(-d_ij^2 / (s_i s_j))`` for ``j`` among the ``k`` nearest neighbours of ``i``
    (or ``i`` among those of ``j``), where ``s_i`` is the distance from ``i`` to its ``k``-th
    neighbour (local scaling). Identical points get affinity 1.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(N, N)``, zero diagonal.
    """
    from scipy.sparse import coo_matrix
    from scipy.spatial import cKDTree

    n = len(points)
    k = max(1, min(int(k), n - 1))
    dist, idx = cKDTree(points).query(points, k=k + 1)  # (N, k+1), first column: the point itself
    dist, idx = dist[:, 1:], idx[:, 1:]
    scale = dist[:, -1].copy()
    positive = scale[scale > 0]
    scale[scale <= 0] = positive.min() if positive.size else 1.0
    rows = np.repeat(np.arange(n), k)
    cols = idx.reshape(-1)
    w = np.exp(-(dist.reshape(-1) ** 2) / (scale[rows] * scale[cols]))
    a = coo_matrix((w, (rows, cols)), shape=(n, n)).tocsr()
    a = a.maximum(a.T)  # symmetrise: an edge when either end counts the other as a neighbour
    a.setdiag(0.0)
    a.eliminate_zeros()
    return a


def kmeans(points: np.ndarray, k: int, *, seed: int = 0, n_init: int = 10, iters: int = 100) -> np.ndarray:
    """Lloyd's k-means with k-means++ seeding (Arthur and Vassilvitskii, SODA 2007).

    The best of ``n_init`` seeded restarts (lowest within-cluster sum of squares) is kept.

    Returns
    -------
    numpy.ndarray
        ``(N,)`` int64 cluster labels in ``0..k-1``.
    """
    n = len(points)
    if k <= 1 or n <= 1:
        return np.zeros(n, dtype=np.int64)
    rng = np.random.default_rng(seed)
    best, best_cost = None, math.inf
    sq = (points**2).sum(1)
    for _ in range(n_init):
        centres = [points[rng.integers(n)]]
        d2 = ((points - centres[0]) ** 2).sum(1)
        for _c in range(1, k):
            total = d2.sum()
            pick = rng.integers(n) if total <= 0 else rng.choice(n, p=d2 / total)
            centres.append(points[pick])
            d2 = np.minimum(d2, ((points - points[pick]) ** 2).sum(1))
        c = np.stack(centres)
        labels = np.zeros(n, dtype=np.int64)
        for it in range(iters):
            dist = sq[:, None] - 2 * points @ c.T + (c**2).sum(1)[None]  # (N, k)
            new = dist.argmin(1)
            if it and np.array_equal(new, labels):
                break
            labels = new
            for j in range(k):
                members = points[labels == j]
                if len(members):
                    c[j] = members.mean(0)
        cost = float(((points - c[labels]) ** 2).sum())
        if cost < best_cost - 1e-12:
            best, best_cost = labels.copy(), cost
    return best


def _eigen(m, n_eig: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``n_eig`` largest eigenpairs of the symmetric ``m = D^-1/2 W D^-1/2``, descending.

    ``m`` is block-diagonal over the connected components of the graph, so each component is
    solved on its own and the spectra merged: a Krylov solver started from one vector cannot be
    trusted to find every copy of an eigenvalue repeated once per component (well separated
    strategies are disconnected components).
    """
    from scipy.sparse.csgraph import connected_components

    n = m.shape[0]
    n_comp, comp = connected_components(m, directed=False)
    vals_all, vecs_all = [], []
    for c in range(n_comp):
        idx = np.flatnonzero(comp == c)
        block = m[idx][:, idx]
        want = min(n_eig, len(idx))
        if len(idx) <= DENSE_LIMIT or want >= len(idx) - 1:
            vals, vecs = np.linalg.eigh(block.toarray())
            order = np.argsort(-vals)[:want]
            vals, vecs = vals[order], vecs[:, order]
        else:
            from scipy.sparse.linalg import eigsh

            v0 = np.random.default_rng(seed).standard_normal(len(idx))
            vals, vecs = eigsh(block, k=want, which="LA", v0=v0, tol=1e-10, maxiter=max(1000, 20 * len(idx)))
        full = np.zeros((n, len(vals)))
        full[idx] = vecs
        vals_all.append(vals)
        vecs_all.append(full)
    vals = np.concatenate(vals_all)
    vecs = np.concatenate(vecs_all, axis=1)
    order = np.argsort(-vals, kind="stable")[:n_eig]
    return vals[order], vecs[:, order]


def spectral_clusters(
    summaries: torch.Tensor,
    *,
    n_neighbors: int | None = None,
    max_clusters: int = MAX_CLUSTERS,
    n_clusters: int | None = None,
    seed: int = 0,
) -> Clustering:
    """Spectral clustering of map summaries with the number of clusters from the eigengap.

    Parameters
    ----------
    summaries : torch.Tensor
        ``(N, G)`` map summaries (:func:`medlens.audit.summary.summarise_maps`).
    n_neighbors : int, optional
        Neighbours per case in the graph; default ``clip(round(log2(N)) + 4, 5, 20)``.
    max_clusters : int
        Largest number of clusters the eigengap may choose.
    n_clusters : int, optional
        Force this number of clusters instead of the eigengap's choice.
    seed : int
        Seeds the eigensolver's start vector and k-means.

    Returns
    -------
    Clustering
    """
    pts = summaries.detach().to("cpu", torch.float64).numpy()
    if pts.ndim != 2 or not np.isfinite(pts).all():
        raise InputError("map summaries must be a finite (N, G) array")
    n = len(pts)
    if n < 3:
        return Clustering(torch.zeros(n, dtype=torch.long), 1, torch.zeros(min(n, 1), dtype=torch.float64),
                          torch.zeros(n, 2, dtype=torch.float64), 0.0)
    k = n_neighbors if n_neighbors is not None else int(np.clip(round(math.log2(n)) + 4, 5, 20))
    w = knn_affinity(pts, k)
    degree = np.asarray(w.sum(1)).reshape(-1)
    inv_sqrt = 1.0 / np.sqrt(np.maximum(degree, 1e-300))
    from scipy.sparse import diags

    m = diags(inv_sqrt) @ w @ diags(inv_sqrt)  # D^-1/2 W D^-1/2: eigenvalues 1 - lambda(L)
    n_eig = min(n - 1, max(max_clusters, n_clusters or 0) + 1, n)
    mu, vecs = _eigen(m.tocsr(), max(n_eig, 3) if n > 3 else n_eig, seed)
    lam = np.clip(1.0 - mu, 0.0, 2.0)  # ascending Laplacian eigenvalues
    if n_clusters is None:
        gaps = np.diff(lam[: max_clusters + 1])
        chosen = int(np.argmax(gaps)) + 1 if gaps.size else 1
    else:
        chosen = int(n_clusters)
    gap = float(lam[chosen] - lam[chosen - 1]) if chosen < len(lam) else 0.0
    if chosen > 1:
        u = vecs[:, :chosen]
        u = u / np.maximum(np.linalg.norm(u, axis=1, keepdims=True), 1e-300)  # Ng-Jordan-Weiss rows
        raw = kmeans(u, chosen, seed=seed)
    else:
        raw = np.zeros(n, dtype=np.int64)
    sizes = np.bincount(raw, minlength=chosen)
    rank = np.empty(chosen, dtype=np.int64)
    rank[np.lexsort((np.arange(chosen), -sizes))] = np.arange(chosen)  # largest cluster first
    labels = rank[raw]
    embedding = vecs[:, 1:3] * inv_sqrt[:, None] if vecs.shape[1] >= 3 else np.zeros((n, 2))
    return Clustering(
        labels=torch.from_numpy(labels.astype(np.int64)),
        n_clusters=int(labels.max()) + 1,
        eigenvalues=torch.from_numpy(lam.copy()),
        embedding=torch.from_numpy(np.ascontiguousarray(embedding)),
        eigengap=gap,
    )
