"""How long idle OpenMP threads spin before they sleep: briefly, unless the user chose otherwise.

PyTorch's CPU kernels run on GNU OpenMP threads, which by default spin for about 300,000 rounds at
the end of every parallel region before they sleep. On a machine whose cores are all busy (another
job, a second medlens process, a shared workstation) a spinning thread takes the core from the
thread that has work, and a many-pass method slows down by far more than its share of the cores.
Beside other jobs a DenseNet-121 pass cost a median 0.9 s per input with the default and 61-74 ms
with a spin of 1,000 rounds or none (``benchmarks/results/openmp_wait.json``: the policies side by
side, taking turns pass by pass). Sleeping at once (``OMP_WAIT_POLICY=PASSIVE``) makes every parallel
region pay a wake-up: on a quiet machine the same pass took a median 52.9 ms against the default's
31.9 ms, and 37.7 ms with 1,000 rounds (``benchmarks/results/openmp_wait_quiet.json``). The short
spin keeps most of the quiet speed and most of the robustness.

The setting is read once, when torch's OpenMP runtime loads, so it is made here, before medlens
imports torch, and only when nothing decided it yet: torch already imported (the user's process is
set up), or the user set ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` (``GOMP_SPINCOUNT=300000``
restores GNU OpenMP's default).
"""

from __future__ import annotations

import os
import sys

#: The variables that decide how GNU OpenMP threads wait.
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
#: Rounds an idle thread spins before it sleeps (GNU OpenMP's default: 300,000).
SPIN_ROUNDS = 1000


def prefer_short_spins(environ: dict | None = None, modules: dict | None = None) -> bool:
    """Set ``GOMP_SPINCOUNT`` to :data:`SPIN_ROUNDS` if torch is not loaded yet and the user set no
    wait policy; returns whether it did."""
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    if "torch" in modules or any(v in environ for v in WAIT_VARIABLES):
        return False
    environ["GOMP_SPINCOUNT"] = str(SPIN_ROUNDS)
    return True
