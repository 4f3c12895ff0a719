"""Comparing two partitions of the same items (clusters, groups of regions)."""

from __future__ import annotations

import torch

from medlens.errors import InputError


def adjusted_rand_index(a: torch.Tensor, b: torch.Tensor) -> float:
    """Adjusted Rand index of two labelings ``(N,)`` (Hubert and Arabie, Journal of Classification 1985).

    ``(sum_ij C(n_ij, 2) - E) / (0.5 (sum_i C(a_i, 2) + sum_j C(b_j, 2)) - E)`` with
    ``E = sum_i C(a_i, 2) sum_j C(b_j, 2) / C(N, 2)``: 1 for identical partitions (up to
    renaming), about 0 for independent ones.
    """
    a, b = torch.as_tensor(a).long().flatten(), torch.as_tensor(b).long().flatten()
    if a.shape != b.shape or len(a) < 2:
        raise InputError(
            f"adjusted_rand_index needs two labelings of the same length (at least 2), got {len(a)} and {len(b)}"
        )
    _, ai = a.unique(return_inverse=True)
    _, bi = b.unique(return_inverse=True)
    table = torch.zeros(int(ai.max()) + 1, int(bi.max()) + 1, dtype=torch.float64)  # contingency table
    table.index_put_((ai, bi), torch.ones(len(a), dtype=torch.float64), accumulate=True)

    def pairs(x: torch.Tensor) -> torch.Tensor:
        return (x * (x - 1) / 2).sum()

    index = pairs(table)
    row, col = pairs(table.sum(1)), pairs(table.sum(0))
    expected = row * col / (len(a) * (len(a) - 1) / 2)
    maximum = (row + col) / 2
    if float(maximum - expected) == 0:
        return 1.0
    return float((index - expected) / (maximum - expected))
