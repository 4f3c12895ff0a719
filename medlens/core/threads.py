"""Temporarily change torch's intra-op thread count."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` intra-op threads and restore the previous count after.

    Small models run thousands of tiny operations (feature-visualization steps, recurrent
    cells): extra threads cannot speed those up, and on shared cores their synchronisation
    slows them several-fold (measured 3-10x on 2 busy cores).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
