"""How much a reader may decode: sizes are checked from the header, before anything is allocated.

A hostile or corrupt file can declare far more data than it holds: a 5 KB PNG whose header says
100000 x 100000 pixels, an 18 MB deflated DICOM that inflates to 8 GB, a NIfTI header with
absurd dimensions, a WFDB header with a signal length of 10^15. Every reader in
:mod:`medlens.data.formats` computes the decoded size from the header alone and calls
:func:`check_decoded_size`, which refuses anything above :func:`decode_limit_bytes` in one line
naming the file, the declared size and the limit (in MB), before the library decodes it.

The limit is derived from the memory budget (the engine's ``memory_mb``):

* ``memory_mb=`` given to a reader (or :func:`medlens.data.formats.read.read`): the limit is
  :data:`DECODE_MULTIPLE` times it, exactly (a low budget gives a low limit);
* else the environment variable ``MEDLENS_MEMORY_MB`` (same meaning);
* else :data:`DECODE_MULTIPLE` times the engine's default CPU budget
  (:func:`medlens.core.engine.budget_bytes`: a quarter of the available memory, at most 1 GiB),
  at least :data:`MIN_DEFAULT_MB` and at most a quarter of the machine's RAM.
"""

from __future__ import annotations

import math
import os
from typing import Iterable

from medlens.errors import FileFormatError, InputError

#: Environment variable that sets the memory budget (MB) when ``memory_mb`` is not given.
ENV_VAR = "MEDLENS_MEMORY_MB"
#: The decoding limit is this many times the memory budget. One: the decoded array alone may
#: take the whole budget, and the readers then hold float copies of it (float32 for the record,
#: float64 on the way for DICOM rescaling), so the peak is several times the limit already;
#: a larger multiple let an 18 MB deflated DICOM of 65535 x 65535 zeros (4 GB decoded) through
#: at the default budget, to a 12.5 GB peak.
DECODE_MULTIPLE = 1
#: The default limit is at least this many MB ...
MIN_DEFAULT_MB = 1024
#: ... and at most this fraction of the machine's RAM.
MAX_RAM_FRACTION = 0.25

MB = 2**20


class DecodeLimitError(FileFormatError):
    """A file declares more decoded data than the memory budget allows."""


def _total_ram_bytes() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return 16 * 2**30


def _positive_mb(value: object, where: str) -> float:
    try:
        mb = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{where} must be a positive number of MB, got {value!r}") from None
    if not (math.isfinite(mb) and mb > 0):
        raise InputError(f"{where} must be a positive number of MB, got {value!r}")
    return mb


def decode_limit_bytes(memory_mb: float | None = None) -> int:
    """The most bytes a reader may decode from one file.

    Parameters
    ----------
    memory_mb : float, optional
        The memory budget in MB (the engine's meaning). Default: ``MEDLENS_MEMORY_MB`` when set,
        else the engine's default CPU budget.

    Returns
    -------
    int
        ``DECODE_MULTIPLE * memory_mb`` MB when a budget is given (keyword or environment);
        otherwise ``DECODE_MULTIPLE`` times the engine's default budget, clamped to
        ``[MIN_DEFAULT_MB, MAX_RAM_FRACTION * RAM]`` (the lower bound wins on tiny machines).

    Raises
    ------
    InputError
        ``memory_mb`` (or the environment variable) is not a positive number.
    """
    if memory_mb is not None:
        return _limit_bytes(_positive_mb(memory_mb, "memory_mb"))
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return _limit_bytes(_positive_mb(env, ENV_VAR))
    import torch

    from medlens.core.engine import Budget, budget_bytes

    engine_default = budget_bytes(Budget(), torch.device("cpu"))
    limit = DECODE_MULTIPLE * engine_default
    limit = min(limit, int(MAX_RAM_FRACTION * _total_ram_bytes()))
    return int(max(limit, MIN_DEFAULT_MB * MB))


def _limit_bytes(mb: float) -> int:
    """``DECODE_MULTIPLE * mb`` MB in bytes; a budget beyond any memory (``--memory-mb 1e308``,
    infinite in bytes) is the largest size a file can declare."""
    return int(min(DECODE_MULTIPLE * mb * MB, float(2**62)))


def _mb(n: int) -> str:
    value = n / MB
    return f"{value:.3g}" if value < 0.1 else f"{value:.1f}" if value < 10 else f"{value:,.0f}"


def _budget_words() -> str:
    return "the memory budget" if DECODE_MULTIPLE == 1 else f"{DECODE_MULTIPLE} x the memory budget"


def declared_bytes(shape: Iterable[int], itemsize: float) -> int:
    """``prod(shape) * itemsize`` as an exact Python integer (never overflows); negative
    dimensions count as 0."""
    n = 1
    for s in shape:
        n *= max(int(s), 0)
    return int(math.ceil(n * itemsize))


def check_decoded_size(path: object, shape: Iterable[int], itemsize: float, *,
                       memory_mb: float | None = None, what: str = "pixels",
                       detail: str = "") -> int:
    """Refuse a file whose header declares more than :func:`decode_limit_bytes` of decoded data.

    Parameters
    ----------
    path : str or os.PathLike
        The file, named in the message.
    shape : iterable of int
        The decoded array's shape as the header declares it.
    itemsize : float
        Bytes per element of the decoded array.
    memory_mb : float, optional
        Passed to :func:`decode_limit_bytes`.
    what : str
        What the elements are ("pixels", "voxels", "samples", "values").
    detail : str
        How the size was computed, shown in the message (default: the shape and the itemsize).

    Returns
    -------
    int
        The declared size in bytes (within the limit).

    Raises
    ------
    DecodeLimitError
        One line: the file, the declared size and the limit, in MB.
    """
    shape = tuple(int(s) for s in shape)
    declared = declared_bytes(shape, itemsize)
    limit = decode_limit_bytes(memory_mb)
    if declared > limit:
        if not detail:
            item = f"{itemsize:g} byte{'s' if itemsize != 1 else ''}"
            detail = " x ".join(str(s) for s in shape) + f" {what} of {item}"
        raise DecodeLimitError(
            f"{path}: its header declares {_mb(declared)} MB of decoded {what} ({detail}), above the "
            f"decoding limit of {_mb(limit)} MB ({_budget_words()}; raise it with --memory-mb, memory_mb= or {ENV_VAR})"
        )
    return declared
