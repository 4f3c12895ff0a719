"""medlens shortens OpenMP's idle spinning, unless torch is loaded or the user chose a policy."""

import os
import subprocess
import sys

from medlens.core.wait_policy import SPIN_ROUNDS, prefer_short_spins


def test_sets_a_short_spin_before_torch_loads():
    env: dict = {}
    assert prefer_short_spins(env, modules={})
    assert env == {"GOMP_SPINCOUNT": str(SPIN_ROUNDS)}


def test_leaves_a_loaded_torch_and_the_users_choice_alone():
    for env, modules in (({}, {"torch": object()}), ({"OMP_WAIT_POLICY": "active"}, {}), ({"GOMP_SPINCOUNT": "300000"}, {})):
        before = dict(env)
        assert not prefer_short_spins(env, modules=modules)
        assert env == before


def test_import_medlens_first_sets_it_for_torch():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    code = "import os, medlens, torch; print(os.environ.get('GOMP_SPINCOUNT'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == str(SPIN_ROUNDS)
