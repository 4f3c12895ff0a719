"""How OpenMP's idle threads wait, measured: spinning (GNU OpenMP's default) against sleeping
(``OMP_WAIT_POLICY=PASSIVE``, what ``import medlens`` sets before torch loads unless the user chose),
on a quiet machine and beside busy processes.

Each (policy, load) runs in a fresh interpreter (the policy is read once, when torch's OpenMP runtime
loads) at ``--threads`` torch threads, and times the passes the many-pass methods are made of:

* DenseNet-121 2D (MONAI) at 160^2, a forward pass of 3 inputs (the chunk RISE and occlusion use);
* ResNet-18 3D (MONAI) at 64^3, a forward pass of 2 inputs;
* the reference CNN at 28^2, a gradient pass of 64 inputs (many small operators).

``--load N`` starts N single-threaded busy processes (a matrix product in a loop, as in
``third_party_speed.py --load``) beside the timed interpreter. Seconds per input: best and median of
``--repeats`` passes after one warm-up; the load averages are stored with each row.

    python benchmarks/openmp_wait.py [--threads 2] [--loads 0,1] [--repeats 15]

Stores ``benchmarks/results/openmp_wait.json`` through ``_runner.write_result`` after each row.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

from _runner import load_now, options, provenance, write_result

POLICIES = {"spinning (default)": None, "sleeping (PASSIVE)": "PASSIVE"}

_CHILD = r"""
import json, statistics, sys, time, warnings
import torch
from monai.networks import nets
sys.path.insert(0, {root!r})
from medlens.models.cnn import CNN

torch.set_num_threads({threads})
warnings.simplefilter("ignore")
torch.manual_seed(0)

def timed(fn, n_inputs):
    fn()
    runs = []
    for _ in range({repeats}):
        t = time.perf_counter(); fn(); runs.append((time.perf_counter() - t) / n_inputs)
    return {{"best_s": min(runs), "median_s": statistics.median(runs), "worst_s": max(runs)}}

dense = nets.DenseNet121(spatial_dims=2, in_channels=1, out_channels=2).eval()
resnet = nets.resnet18(spatial_dims=3, n_input_channels=1, num_classes=2).eval()
cnn = CNN(2, 1, 2).eval()
x2, x3, xs = torch.randn(3, 1, 160, 160), torch.randn(2, 1, 64, 64, 64), torch.randn(64, 1, 28, 28)

def gradient():
    x = xs.clone().requires_grad_(True)
    cnn(x)[:, 1].sum().backward()

with torch.inference_mode():
    rows = {{"DenseNet-121 2D 160^2 forward x3": timed(lambda: dense(x2), 3),
             "ResNet-18 3D 64^3 forward x2": timed(lambda: resnet(x3), 2)}}
rows["CNN 28^2 gradient x64"] = timed(gradient, 64)
print(json.dumps(rows))
"""


def _busy() -> None:
    import torch

    torch.set_num_threads(1)
    a = torch.randn(512, 512)
    while True:
        a = torch.tanh(a @ a)


def run_child(policy: str | None, threads: int, repeats: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    if policy:
        env["OMP_WAIT_POLICY"] = policy
    root = str(Path(__file__).resolve().parents[1])
    code = _CHILD.format(root=root, threads=threads, repeats=repeats)
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = options(argparse.ArgumentParser(description=__doc__.splitlines()[0]), "openmp_wait", seed=None, threads=2)
    parser.add_argument("--loads", default="0,1", help="comma-separated numbers of busy processes")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    origin = provenance(seed=None, config=vars(args))
    ctx = mp.get_context("spawn")
    rows = []
    for load in [int(v) for v in args.loads.split(",")]:
        loaders = [ctx.Process(target=_busy, daemon=True) for _ in range(load)]
        for proc in loaders:
            proc.start()
        time.sleep(2.0 if load else 0.0)
        try:
            for label, policy in POLICIES.items():
                before = load_now()
                passes = run_child(policy, args.threads, args.repeats)
                rows.append({"policy": label, "load_processes": load, "load_before": before, "load_after": load_now(),
                             "passes": passes})
                for name, t in passes.items():
                    print(f"load {load}  {label:20s} {name:34s} best {1000 * t['best_s']:8.1f} ms  median "
                          f"{1000 * t['median_s']:8.1f} ms  worst {1000 * t['worst_s']:8.1f} ms", flush=True)
                write_result("openmp_wait", {"rows": rows}, seed=None, path=args.out, origin=origin)
        finally:
            for proc in loaders:
                proc.terminate()


if __name__ == "__main__":
    main()
