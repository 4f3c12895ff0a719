"""How OpenMP's idle threads wait, measured: GNU OpenMP's default (spin about 300,000 rounds, then
sleep), short spins of 10,000 and 1,000 rounds (``GOMP_SPINCOUNT``; ``import medlens`` sets 1,000
before torch loads unless the user chose) and sleeping at once (``OMP_WAIT_POLICY=PASSIVE``), on a
quiet machine and beside busy processes.

Each policy runs in its own fresh interpreter (the policy is read once, when torch's OpenMP runtime
loads) at ``--threads`` torch threads; the policies take turns pass by pass (one runs while the other
waits), so that a change in the machine's load falls on both alike. The passes are those the
many-pass methods are made of:

* DenseNet-121 2D (MONAI) at 160^2, a forward pass of 3 inputs (the chunk RISE and occlusion use);
* ResNet-18 3D (MONAI) at 64^3, a forward pass of 2 inputs;
* the reference CNN at 28^2, a gradient pass of 64 inputs (many small operators).

``--load N`` starts N single-threaded busy processes (a matrix product in a loop, as in
``third_party_speed.py --load``) beside the timed interpreters. Seconds per input: best, median and
worst of ``--repeats`` passes after one warm-up; the load averages are stored with each row.

    python benchmarks/openmp_wait.py [--threads 2] [--loads 0,1] [--repeats 15]

Stores ``benchmarks/results/openmp_wait.json`` through ``_runner.write_result`` after each row.
"""

from __future__ import annotations

import argparse
import json
import statistics
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

from _runner import busy_loop, load_now, options, provenance, write_result

#: label -> the variables of the policy (GNU OpenMP's default spins about 300,000 rounds before sleeping)
POLICIES = {"spinning (default)": {}, "spin 10,000": {"GOMP_SPINCOUNT": "10000"},
            "spin 1,000": {"GOMP_SPINCOUNT": "1000"}, "sleeping (PASSIVE)": {"OMP_WAIT_POLICY": "PASSIVE"}}

_CHILD = r"""
import json, sys, time, warnings
import torch
from monai.networks import nets
sys.path.insert(0, {root!r})
from medlens.models.cnn import CNN

torch.set_num_threads({threads})
warnings.simplefilter("ignore")
torch.manual_seed(0)
dense = nets.DenseNet121(spatial_dims=2, in_channels=1, out_channels=2).eval()
resnet = nets.resnet18(spatial_dims=3, n_input_channels=1, num_classes=2).eval()
cnn = CNN(2, 1, 2).eval()
x2, x3, xs = torch.randn(3, 1, 160, 160), torch.randn(2, 1, 64, 64, 64), torch.randn(64, 1, 28, 28)

def gradient():
    x = xs.clone().requires_grad_(True)
    cnn(x)[:, 1].sum().backward()

def forward(model, x):
    with torch.inference_mode():
        model(x)

PASSES = {{"DenseNet-121 2D 160^2 forward x3": (lambda: forward(dense, x2), 3),
          "ResNet-18 3D 64^3 forward x2": (lambda: forward(resnet, x3), 2),
          "CNN 28^2 gradient x64": (gradient, 64)}}
for fn, _ in PASSES.values():
    fn()  # warm-up
print(json.dumps(list(PASSES)), flush=True)
for line in sys.stdin:  # one pass per line, named by the parent
    fn, n = PASSES[line.strip()]
    t = time.perf_counter()
    fn()
    print(json.dumps((time.perf_counter() - t) / n), flush=True)
"""


def start_child(policy: dict[str, str], threads: int) -> subprocess.Popen:
    """A fresh interpreter with the policy in its environment, waiting for passes to time."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(policy)
    root = str(Path(__file__).resolve().parents[1])
    return subprocess.Popen([sys.executable, "-c", _CHILD.format(root=root, threads=threads)], env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def interleaved(children: dict[str, subprocess.Popen], repeats: int) -> dict:
    """Per policy and pass, seconds per input: the policies take turns pass by pass (one child
    runs while the others wait), so a change of the machine's load falls on all alike."""
    names = [json.loads(child.stdout.readline()) for child in children.values()][0]
    times: dict = {label: {name: [] for name in names} for label in children}
    for _ in range(repeats):
        for name in names:
            for label, child in children.items():
                child.stdin.write(name + "\n")
                child.stdin.flush()
                times[label][name].append(json.loads(child.stdout.readline()))
    return {label: {name: {"best_s": min(t), "median_s": statistics.median(t), "worst_s": max(t)}
                    for name, t in per.items()} for label, per in times.items()}


def main() -> None:
    parser = options(argparse.ArgumentParser(description=__doc__.splitlines()[0]), "openmp_wait", seed=0, threads=2)
    parser.add_argument("--loads", default="0,1", help="comma-separated numbers of busy processes")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    origin = provenance(seed=0, config=vars(args))  # the children seed torch with 0
    ctx = mp.get_context("spawn")
    rows = []
    for load in [int(v) for v in args.loads.split(",")]:
        loaders = [ctx.Process(target=busy_loop, daemon=True) for _ in range(load)]
        for proc in loaders:
            proc.start()
        time.sleep(2.0 if load else 0.0)
        try:
            before = load_now()
            children = {label: start_child(policy, args.threads) for label, policy in POLICIES.items()}
            try:
                measured = interleaved(children, args.repeats)
            finally:
                for child in children.values():
                    child.kill()
            for label, passes in measured.items():
                rows.append({"policy": label, "load_processes": load, "load_before": before, "load_after": load_now(),
                             "passes": passes})
                for name, t in passes.items():
                    print(f"load {load}  {label:20s} {name:34s} best {1000 * t['best_s']:8.1f} ms  median "
                          f"{1000 * t['median_s']:8.1f} ms  worst {1000 * t['worst_s']:8.1f} ms", flush=True)
            write_result("openmp_wait", {"rows": rows}, seed=0, path=args.out, origin=origin)
        finally:
            for proc in loaders:
                proc.terminate()


if __name__ == "__main__":
    main()
