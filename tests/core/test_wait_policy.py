"""medlens asks OpenMP threads to sleep when idle, unless torch is loaded or the user chose."""

import os
import subprocess
import sys

from medlens.core.wait_policy import prefer_sleeping_waits


def test_sets_passive_before_torch_loads():
    env: dict = {}
    assert prefer_sleeping_waits(env, modules={})
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_leaves_a_loaded_torch_and_the_users_choice_alone():
    for env, modules in (({}, {"torch": object()}), ({"OMP_WAIT_POLICY": "active"}, {}), ({"GOMP_SPINCOUNT": "1000"}, {})):
        before = dict(env)
        assert not prefer_sleeping_waits(env, modules=modules)
        assert env == before


def test_import_medlens_first_sets_it_for_torch():
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    code = "import os, medlens, torch; print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "PASSIVE"
