"""The one seed scheme: every random draw comes from a generator derived from a seed and keys.

A random method takes an integer ``seed``. Each independent draw (one noisy copy, one mask, one
sample's random map) gets its own generator, seeded by :func:`derive_seed` from the user's seed
and the draw's keys (its index, the sample's id, a stream name). Results therefore do not
depend on chunk sizes, batch composition or the order work is done in, and two streams of one
seed never share numbers. The global torch generator is never touched; where a third-party
constructor draws from it (``nn.Module`` weight initialisation), :func:`seeded` forks it for the
block and restores it after.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from typing import Any, Iterator

import torch

from medlens.errors import InputError

_MASK = 2**63 - 1


def check_seed(seed: Any) -> int:
    """A seed must be an int (not a bool)."""
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise InputError(f"seed must be an integer, got {seed!r}")
    return seed


def derive_seed(seed: int, *keys: int | str) -> int:
    """A 63-bit seed for the draw named by ``keys`` under ``seed`` (BLAKE2b of both)."""
    text = ":".join(str(k) for k in (check_seed(seed), *keys))
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") & _MASK


def generator(seed: int, *keys: int | str, device: torch.device | str = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` for the draw named by ``keys`` under ``seed``."""
    return torch.Generator(device=device).manual_seed(derive_seed(seed, *keys))


def row_seeds(seed: int, n: int, stream: str = "rows") -> list[int]:
    """``n`` independent seeds, one per random draw (noisy copy, mask) of a method."""
    return [derive_seed(seed, stream, i) for i in range(n)]


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch's global generator for the block and restore its state after.

    For code that can only draw from the global generator, such as the weight initialisation
    of ``nn.Module`` constructors; nothing outside the block sees a changed state.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(check_seed(seed))  # the seed itself: the same weights as a script's manual_seed
        yield
