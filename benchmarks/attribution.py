"""Speed and memory of medlens's attribution methods against Captum and the model-evaluation floor.

Run from the repository root (``make bench``)::

    python benchmarks/attribution.py [--threads 1] [--only 2d|3d] [--out benchmarks/results/attribution.json]

One process, one run: for a reference 2D CNN (input 1x1x128x128, widths 16-32-64) and a reference
3D CNN (input 1x1x96x96x96, widths 8-16-32), every registered method is timed in medlens
(``medlens.explain`` with an explicit target), in Captum at its default
settings and in Captum at its best settings (its batching knob set to the best batch size
measured below), with the same method settings in both. Each row also gets:

floor
    the method's number of model evaluations times the per-sample cost of one evaluation at the
    best batch size, measured in the same run (forward passes under ``inference_mode``; gradient
    evaluations = forward + backward to the input) as the sustained throughput of back-to-back
    batches: a sweep over batch sizes picks the best one, and the per-sample cost at that batch
    size is measured again right before each method (the shared machine's speed drifts).
peak memory
    the peak resident memory (RSS) above its level just before the call, sampled every 2 ms by a
    background thread from ``/proc/self/statm``. torch's CPU allocator is invisible to
    ``tracemalloc``; large tensors are ``mmap``-ed by glibc and returned to the system when freed,
    and ``malloc_trim`` is called before each measurement, so the RSS delta tracks the tensors a
    method keeps alive at once (to within a few MiB of allocator slack).

Results are printed as a table and stored through ``_runner.write_result``
(``benchmarks/results/attribution.json``, or ``--out``). The machine is shared: the timings carry
its load, which is recorded in the JSON.
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import math
import os
import platform
import threading
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from _runner import options, provenance, write_result

import medlens
from medlens.attribution.cam import default_cam_layer
from medlens.attribution.occlusion import default_window, window_starts
from medlens.models import CNN

PAGE = os.sysconf("SC_PAGE_SIZE")
TARGET = 1
PATH_AND_PERTURBATION = ("integrated_gradients", "smoothgrad", "occlusion", "rise")


# --------------------------------------------------------------------------- measurement


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * PAGE


def release_memory() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class PeakRSS:
    """Peak RSS above the starting level while the block runs (sampled every 2 ms)."""

    def __enter__(self) -> "PeakRSS":
        release_memory()
        self.base = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            self._stop.wait(0.002)

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def mib(self) -> float:
        return (self.peak - self.base) / 2**20


# Times are CPU seconds of the computing thread (``time.thread_time``): torch runs every
# operation in the calling thread when it has one thread, and on a shared machine CPU time does
# not count the time other processes hold the cores, which wall time does (it varied 2x from run
# to run while five engineers shared the 2 cores). With --threads > 1, process CPU time is used.
clock = time.thread_time


def measure(fn: Callable[[], Any]) -> tuple[float, float, float, Any]:
    """(CPU seconds, wall seconds, peak MiB above start, result) of one call."""
    with PeakRSS() as mem:
        wall, start = time.perf_counter(), clock()
        result = fn()
        seconds, wall = clock() - start, time.perf_counter() - wall
    return seconds, wall, mem.mib, result


def available_gib() -> float:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    return float("nan")


def per_sample_costs(model, x, sizes, min_seconds, kinds=("forward", "gradient")) -> dict[str, dict[int, float]]:
    """Seconds per sample of a forward and of a gradient evaluation, per batch size.

    Sustained throughput: each batch size runs back to back for at least ``min_seconds`` (and
    at least twice), the way a method's evaluations run, after one warm-up call.
    """
    def throughput(step, bs):
        step()  # warm-up
        calls, start = 0, clock()
        while calls < 2 or clock() - start < min_seconds:
            step()
            calls += 1
        return (clock() - start) / (calls * bs)

    costs: dict[str, dict[int, float]] = {"forward": {}, "gradient": {}}
    for bs in sizes:
        batch = x.expand(bs, *x.shape[1:]).clone()

        def forward(batch=batch):
            with torch.inference_mode():
                model(batch)

        def gradient(batch=batch):
            leaf = batch.detach().requires_grad_(True)
            torch.autograd.grad(model(leaf)[:, TARGET].sum(), leaf)

        if "forward" in kinds:
            costs["forward"][bs] = throughput(forward, bs)
        if "gradient" in kinds:
            costs["gradient"][bs] = throughput(gradient, bs)
        del batch
        release_memory()
    return costs


# --------------------------------------------------------------------------- the cases


def reference_models(only: str | None) -> list[dict[str, Any]]:
    cases = []
    if only in (None, "2d"):
        cases.append({
            "name": "2D CNN 1x1x128x128", "dims": 2, "shape": (1, 128, 128), "widths": (16, 32, 64),
            "sizes": [1, 2, 4, 8, 16, 32, 64, 128], "min_seconds": 1.0, "method_repeats": 5,
            "settings": {
                "integrated_gradients": {"n_steps": 50},
                "smoothgrad": {"n_samples": 50, "noise": 0.15},
                "occlusion": {},  # default window 16x16, stride 8x8
                "rise": {},  # default 1000 masks, s = 7, p = 0.5
            },
        })
    if only in (None, "3d"):
        cases.append({
            "name": "3D CNN 1x1x96x96x96", "dims": 3, "shape": (1, 96, 96, 96), "widths": (8, 16, 32),
            "sizes": [1, 2, 4], "min_seconds": 0.0, "method_repeats": 1,
            "settings": {
                "integrated_gradients": {"n_steps": 50},
                # fewer evaluations than the defaults keep the run under ten minutes on 2 cores;
                # medlens, Captum and the floor all use these same settings
                "smoothgrad": {"n_samples": 25, "noise": 0.15},
                "occlusion": {"window": 24, "stride": 24},
                "rise": {"n_masks": 100},
            },
        })
    return cases


def evaluations(name: str, options: dict[str, Any], shape: tuple[int, ...]) -> tuple[int, int]:
    """(forward evaluations, gradient evaluations) a method needs for one sample."""
    spatial = shape[1:]
    if name == "integrated_gradients":
        return 2, options.get("n_steps", 50)  # + F(x) and F(baseline) for the convergence delta
    if name == "smoothgrad":
        return 0, options.get("n_samples", 50)
    if name == "occlusion":
        window = options.get("window") or default_window(spatial)
        window = (window,) * len(spatial) if isinstance(window, int) else window
        stride = options.get("stride") or tuple(max(1, w // 2) for w in window)
        stride = (stride,) * len(spatial) if isinstance(stride, int) else stride
        return 1 + math.prod(len(window_starts(n, w, s)) for n, w, s in zip(spatial, window, stride)), 0
    if name == "rise":
        return options.get("n_masks", 1000), 0
    return 0, 1  # single-pass gradient methods (gradient, grad_x_input, the CAM family, fastcam)


def captum_runs(name, model, x, options, best_fwd_bs, best_grad_bs, cam_layer):
    """(default, best, note): Captum callables for a method, or (None, None, note)."""
    try:
        from captum import attr as ca
    except ImportError:
        return None, None, "captum not installed"
    if name == "gradient":
        run = lambda: ca.Saliency(model).attribute(x, target=TARGET)
        return run, run, "no batching knob"
    if name == "grad_x_input":
        run = lambda: ca.InputXGradient(model).attribute(x, target=TARGET)
        return run, run, "no batching knob"
    if name == "integrated_gradients":
        n = options["n_steps"]

        def ig(batch):
            return lambda: ca.IntegratedGradients(model).attribute(
                x, target=TARGET, n_steps=n, method="gausslegendre", internal_batch_size=batch,
                return_convergence_delta=True)

        return ig(None), ig(best_grad_bs), f"internal_batch_size None / {best_grad_bs}"
    if name == "smoothgrad":
        stdev = float(options["noise"] * (x.max() - x.min()))

        def sg(batch):
            return lambda: ca.NoiseTunnel(ca.Saliency(model)).attribute(
                x, nt_type="smoothgrad", nt_samples=options["n_samples"], stdevs=stdev,
                nt_samples_batch_size=batch, target=TARGET)

        return sg(None), sg(best_grad_bs), f"nt_samples_batch_size None / {best_grad_bs}"
    if name == "gradcam":
        mode = {1: "linear", 2: "bilinear", 3: "trilinear"}[x.ndim - 2]

        def gc_():
            cam = ca.LayerGradCam(model, cam_layer).attribute(x, target=TARGET, relu_attributions=True)
            return F.interpolate(cam, size=x.shape[2:], mode=mode, align_corners=False)

        return gc_, gc_, "no batching knob"
    if name == "occlusion":
        spatial = x.shape[2:]
        window = options.get("window") or default_window(spatial)
        window = (window,) * len(spatial) if isinstance(window, int) else tuple(window)
        stride = options.get("stride") or tuple(max(1, w // 2) for w in window)
        stride = (stride,) * len(spatial) if isinstance(stride, int) else tuple(stride)
        c = x.shape[1]

        def occ(per_eval):
            return lambda: ca.Occlusion(model).attribute(
                x, target=TARGET, sliding_window_shapes=(c, *window), strides=(c, *stride), baselines=0.0,
                perturbations_per_eval=per_eval)

        return occ(1), occ(best_fwd_bs), f"perturbations_per_eval 1 / {best_fwd_bs}"
    return None, None, "not in Captum"


def run_case(case: dict[str, Any], log: Callable[[str], None]) -> dict[str, Any]:
    torch.manual_seed(0)
    model = CNN(case["dims"], 1, 2, widths=case["widths"], input_shape=case["shape"]).eval()
    x = torch.randn(1, *case["shape"], generator=torch.Generator().manual_seed(1))
    log(f"\n== {case['name']}: per-sample costs over batch sizes {case['sizes']}")
    costs = per_sample_costs(model, x, case["sizes"], case["min_seconds"])
    best_fwd_bs = min(costs["forward"], key=costs["forward"].get)
    best_grad_bs = min(costs["gradient"], key=costs["gradient"].get)
    t_fwd, t_grad = costs["forward"][best_fwd_bs], costs["gradient"][best_grad_bs]
    log(f"   forward {t_fwd * 1e3:.2f} ms/sample at batch {best_fwd_bs}; "
        f"gradient {t_grad * 1e3:.2f} ms/sample at batch {best_grad_bs}")
    cam_layer = default_cam_layer(model)
    rows = []
    for name in medlens.methods():
        options = dict(case["settings"].get(name, {}))
        if name in ("smoothgrad", "rise"):
            options.setdefault("seed", 0)
        n_fwd, n_grad = evaluations(name, options, case["shape"])
        # The machine's speed drifts with the other processes' use of the shared cache and memory
        # bandwidth (CPU time too): re-measure the per-sample costs at the best batch sizes right
        # before each method, so that its floor reflects the conditions it runs in.
        refresh = name in PATH_AND_PERTURBATION  # the methods the floor bar is about
        fwd_now = per_sample_costs(model, x, [best_fwd_bs], case["min_seconds"] / 2, ("forward",)) \
            if n_fwd and refresh else None
        grad_now = per_sample_costs(model, x, [best_grad_bs], case["min_seconds"] / 2, ("gradient",)) \
            if n_grad and refresh else None
        t_fwd_now = fwd_now["forward"][best_fwd_bs] if fwd_now else t_fwd
        t_grad_now = grad_now["gradient"][best_grad_bs] if grad_now else t_grad
        floor = n_fwd * t_fwd_now + n_grad * t_grad_now
        captum_default, captum_best, note = captum_runs(name, model, x, options, best_fwd_bs, best_grad_bs, cam_layer)
        row: dict[str, Any] = {
            "model": case["name"], "method": name, "options": {k: v for k, v in options.items()},
            "forward_evaluations": n_fwd, "gradient_evaluations": n_grad, "floor_s": floor, "captum_knob": note,
            "floor_forward_s_per_sample": t_fwd_now, "floor_gradient_s_per_sample": t_grad_now,
        }
        runs = [("medlens", lambda name=name, options=options: medlens.explain(
            model, x, target=TARGET, method=name, **options))]
        if captum_default is not None:
            runs.append(("captum_default", captum_default))
            if captum_best is not captum_default:
                runs.append(("captum_best", captum_best))
        for label, fn in runs:
            times, walls, peak = [], [], 0.0
            for _ in range(case["method_repeats"]):
                if label == "captum_default" and name == "integrated_gradients" and case["dims"] == 3 \
                        and available_gib() < 12:
                    row["captum_default_skipped"] = f"only {available_gib():.1f} GiB available"
                    times = [math.nan]
                    break
                seconds, wall, mib, result = measure(fn)
                times.append(seconds)
                walls.append(wall)
                peak = max(peak, mib)
                if label == "medlens":
                    row["medlens_method_s"] = result.seconds
                del result
                release_memory()
            # the median of the repeats: the machine is shared and its load varies
            row[f"{label}_s"], row[f"{label}_peak_mib"] = sorted(times)[len(times) // 2], peak
            row[f"{label}_all_s"], row[f"{label}_wall_s"] = times, walls
        if captum_best is captum_default and "captum_default_s" in row:
            row["captum_best_s"], row["captum_best_peak_mib"] = row["captum_default_s"], row["captum_default_peak_mib"]
        row["medlens_over_floor"] = row["medlens_s"] / floor
        if row.get("captum_default_s"):
            row["speedup_vs_captum_default"] = row["captum_default_s"] / row["medlens_s"]
            row["speedup_vs_captum_best"] = row["captum_best_s"] / row["medlens_s"]
        rows.append(row)
        log(format_row(row))
    return {
        "model": case["name"], "widths": list(case["widths"]), "input_shape": [1, *case["shape"]],
        "per_sample_s": {k: {str(bs): v for bs, v in d.items()} for k, d in costs.items()},
        "best_forward_batch": best_fwd_bs, "best_gradient_batch": best_grad_bs, "rows": rows,
    }


# --------------------------------------------------------------------------- output

HEADER = (f"{'method':22s} {'settings':24s} {'evals':>9s} {'medlens s':>10s} {'captum def':>10s} {'captum best':>11s} "
          f"{'floor s':>9s} {'x floor':>8s} {'vs def':>7s} {'vs best':>7s} {'peak MiB':>9s} "
          f"{'captum def MiB':>14s} {'captum best MiB':>15s}")


def _num(value: Any, fmt: str) -> str:
    return format(value, fmt) if isinstance(value, (int, float)) and not math.isnan(value) else "-"


def format_row(row: dict[str, Any]) -> str:
    evals = f"{row['forward_evaluations']}f+{row['gradient_evaluations']}g"
    settings = " ".join(f"{k}={v}" for k, v in row["options"].items() if k != "seed") or "defaults"
    return (f"{row['method']:22s} {settings[:24]:24s} {evals:>9s} {_num(row['medlens_s'], '10.3f')} "
            f"{_num(row.get('captum_default_s'), '10.3f')} {_num(row.get('captum_best_s'), '11.3f')} "
            f"{_num(row['floor_s'], '9.3f')} {_num(row['medlens_over_floor'], '8.2f')} "
            f"{_num(row.get('speedup_vs_captum_default'), '7.2f')} {_num(row.get('speedup_vs_captum_best'), '7.2f')} "
            f"{_num(row['medlens_peak_mib'], '9.0f')} {_num(row.get('captum_default_peak_mib'), '14.0f')} "
            f"{_num(row.get('captum_best_peak_mib'), '15.0f')}")


def check_bars(results: list[dict[str, Any]]) -> list[str]:
    """The issue's bars, each as a line starting with PASS or MISS."""
    lines = []
    for case in results:
        for row in case["rows"]:
            tag = f"{case['model']} {row['method']}"
            if row["method"] in PATH_AND_PERTURBATION:
                ok = row["medlens_over_floor"] <= 1.25
                lines.append(f"{'PASS' if ok else 'MISS'} {tag}: {row['medlens_over_floor']:.2f}x its floor (bar 1.25x)")
            if row.get("captum_best_s") and not math.isnan(row["captum_best_s"]):
                ok = row["medlens_s"] <= row["captum_best_s"]
                lines.append(f"{'PASS' if ok else 'MISS'} {tag}: {row['speedup_vs_captum_best']:.2f}x Captum's best "
                             "speed (bar >= 1)")
            if "3D" in case["model"] and row["method"] in ("integrated_gradients", "occlusion"):
                speedup = row.get("speedup_vs_captum_default", math.nan)
                ok = speedup >= 2
                lines.append(f"{'PASS' if ok else 'MISS'} {tag}: {speedup:.2f}x faster than Captum's default (bar 2x)")
            if "3D" in case["model"] and row["method"] == "integrated_gradients":
                ok = row["medlens_peak_mib"] < 2048
                lines.append(f"{'PASS' if ok else 'MISS'} {tag}: peak {row['medlens_peak_mib']:.0f} MiB (bar < 2048 MiB; "
                             f"Captum default {_num(row.get('captum_default_peak_mib'), '.0f')} MiB)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    options(parser, "attribution", seed=None)  # one thread by default: on a shared 2-core machine more add contention
    parser.add_argument("--only", choices=["2d", "3d"], help="run one reference model only")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    origin = provenance(seed=0, config=vars(args))  # seeded models (0), inputs (1), SmoothGrad and RISE (0)
    global clock
    if args.threads > 1:
        clock = time.process_time
    started = time.perf_counter()
    env = {
        "torch": torch.__version__, "python": platform.python_version(), "threads": args.threads,
        "cpus": os.cpu_count(), "load_average_start": os.getloadavg(), "available_gib_start": available_gib(),
    }
    try:
        import captum

        env["captum"] = captum.__version__
    except ImportError:
        env["captum"] = None
    env["clock"] = clock.__name__
    print(f"medlens attribution benchmark: torch {env['torch']}, captum {env['captum']}, "
          f"{args.threads} thread(s), times in CPU seconds ({clock.__name__}), "
          f"load average {env['load_average_start'][0]:.1f}")
    results = []
    for case in reference_models(args.only):
        header_printed = False

        def log(line: str) -> None:
            nonlocal header_printed
            if not header_printed and not line.startswith(("\n", "   ")):
                print(HEADER)
                header_printed = True
            print(line, flush=True)

        results.append(run_case(case, log))
    env["load_average_end"] = os.getloadavg()
    env["seconds_total"] = time.perf_counter() - started
    bars = check_bars(results)
    print("\nbars:")
    for line in bars:
        print("  " + line)
    print(f"\ntotal {env['seconds_total']:.0f} s, load average at the end {env['load_average_end'][0]:.1f}")
    numbers = json.loads(json.dumps({"environment": env, "results": results, "bars": bars}, default=str))
    print(f"stored {write_result('attribution', numbers, seed=0, config=vars(args), path=args.out, origin=origin)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
