"""How idle OpenMP threads wait: asleep, not spinning, unless the user chose otherwise.

PyTorch's CPU kernels run on GNU OpenMP threads, which by default spin for a while at the end of
every parallel region before they sleep. On a machine whose cores are all busy (another job, a
second medlens process, a shared workstation) a spinning thread takes the core from the thread
that has work, and a many-pass method slows down by far more than its share of the cores: a
DenseNet-121 pass at 160^2 took 0.1-2.2 s instead of 0.1 s with two threads beside other jobs,
and 65-130 ms with sleeping waits (``benchmarks/openmp_wait.py``). The policy is read once, when
torch's OpenMP runtime loads, so it is set here, before medlens imports torch, and only when
nothing decided it yet: torch already imported (the user's process is set up), or the user set
``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT`` (``OMP_WAIT_POLICY=active`` restores the spinning).
"""

from __future__ import annotations

import os
import sys

#: The variables that decide how GNU OpenMP threads wait.
WAIT_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def prefer_sleeping_waits(environ: dict | None = None, modules: dict | None = None) -> bool:
    """Set ``OMP_WAIT_POLICY=PASSIVE`` if torch is not loaded yet and the user set no wait policy;
    returns whether it did."""
    environ = os.environ if environ is None else environ
    modules = sys.modules if modules is None else modules
    if "torch" in modules or any(v in environ for v in WAIT_VARIABLES):
        return False
    environ["OMP_WAIT_POLICY"] = "PASSIVE"
    return True
