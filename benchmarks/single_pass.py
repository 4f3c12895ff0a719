"""Single-pass methods against Captum on one 224x224 image: does ``explain`` add a pass?

Run from the repository root::

    .venv/bin/python benchmarks/single_pass.py [--repeats 41] [--threads 1]

``medlens.explain(model, x, target, method)`` with an explicit target runs no separate
validation pass: the input's shape, the outputs' finiteness and the target's range are checked
inside the method's own first (and here only) chunk. This script times, on one 1x3x224x224
image and a reference 2D CNN (widths 16-32-64), each single-pass method beside the Captum
method that does the same work:

=================  ==================================
medlens            Captum
=================  ==================================
``gradient``       ``Saliency`` (``abs=False``)
``grad_x_input``   ``InputXGradient``
``gradcam``        ``LayerGradCam`` + ReLU + upsampling
=================  ==================================

and the same for the predicted class (no target given): Captum's user runs a forward pass to find
it (``model(x).argmax(1)``), medlens reads it from the method's own pass.

and the floor, one forward+backward pass of the bare model. Runs are interleaved (medlens,
Captum, floor, medlens, ...) so that the shared machine's drifting speed hits all three alike,
and the medians are compared. The bar of the structure issue: medlens at most 1.1x Captum.
Results are printed and stored through ``_runner.write_result`` (``benchmarks/results/single_pass.json``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F
from _runner import options, provenance, write_result

import medlens
from medlens.attribution.cam import default_cam_layer
from medlens.models import CNN

TARGET = 1
BAR = 1.1


def build(seed: int = 0) -> tuple[torch.nn.Module, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = CNN(2, 3, 2, widths=(16, 32, 64), input_shape=(3, 224, 224)).eval()
    x = torch.rand(1, 3, 224, 224, generator=gen)
    return model, x


def contenders(model: torch.nn.Module, x: torch.Tensor) -> dict[str, dict]:
    from captum.attr import InputXGradient, LayerGradCam, Saliency

    layer = default_cam_layer(model)

    def captum_gradcam():
        cam = LayerGradCam(model, layer).attribute(x, target=TARGET, relu_attributions=True)
        return F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False)

    def floor():
        xr = x.detach().requires_grad_(True)
        model(xr)[:, TARGET].sum().backward()
        return xr.grad

    return {
        "gradient": {
            "medlens": lambda: medlens.explain(model, x, TARGET, "gradient").values,
            "captum": lambda: Saliency(model).attribute(x, target=TARGET, abs=False),
        },
        "grad_x_input": {
            "medlens": lambda: medlens.explain(model, x, TARGET, "grad_x_input").values,
            "captum": lambda: InputXGradient(model).attribute(x, target=TARGET),
        },
        "gradcam": {
            "medlens": lambda: medlens.explain(model, x, TARGET, "gradcam").values,
            "captum": captum_gradcam,
        },
        # no target: explain the predicted class. A Captum user finds it with a forward pass first;
        # medlens reads it from the method's own pass (PredictedTarget)
        "gradient, predicted class": {
            "medlens": lambda: medlens.explain(model, x, None, "gradient").values,
            "captum": lambda: Saliency(model).attribute(x, target=model(x).argmax(1), abs=False),
        },
        "gradcam, predicted class": {
            "medlens": lambda: medlens.explain(model, x, None, "gradcam").values,
            "captum": lambda: F.interpolate(LayerGradCam(model, layer).attribute(
                x, target=model(x).argmax(1), relu_attributions=True), size=x.shape[2:], mode="bilinear",
                align_corners=False),
        },
        "_floor": {"floor": floor},
    }


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options(parser, "single_pass", seed=None)
    parser.add_argument("--repeats", type=int, default=41, help="interleaved runs per contender (default 41)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    origin = provenance(seed=0, config=vars(args))  # the model and image of seed 0
    model, x = build()
    runs = contenders(model, x)
    floor_fn = runs.pop("_floor")["floor"]
    # the same numbers first: a benchmark of different work would mean nothing
    for name, pair in runs.items():
        a, b = pair["medlens"](), pair["captum"]()
        torch.testing.assert_close(a, b.to(a.dtype), rtol=1e-4, atol=1e-6, msg=f"{name} differs from Captum")
    times: dict[str, dict[str, list[float]]] = {n: {"medlens": [], "captum": []} for n in runs}
    floor_times: list[float] = []
    for _warm in range(3):
        floor_fn()
        for pair in runs.values():
            pair["medlens"](), pair["captum"]()
    for i in range(args.repeats):
        floor_times.append(timed(floor_fn))
        for name, pair in runs.items():
            order = ("medlens", "captum") if i % 2 == 0 else ("captum", "medlens")
            for who in order:
                times[name][who].append(timed(pair[who]))
    floor = statistics.median(floor_times)
    rows = []
    print(f"one 1x3x224x224 image, CNN 16-32-64, {args.threads} thread(s), {args.repeats} interleaved runs; "
          f"floor (forward+backward) {floor * 1e3:.2f} ms")
    print(f"{'method':<26}{'medlens ms':>12}{'captum ms':>12}{'medlens/captum':>16}{'medlens/floor':>15}  bar")
    ok = True
    for name, t in times.items():
        m, c = statistics.median(t["medlens"]), statistics.median(t["captum"])
        ratio = m / c
        passed = ratio <= BAR
        ok &= passed
        rows.append({"method": name, "medlens_s": m, "captum_s": c, "ratio": ratio, "floor_s": floor,
                     "pass": passed})
        print(f"{name:<26}{m * 1e3:>12.2f}{c * 1e3:>12.2f}{ratio:>16.3f}{m / floor:>15.3f}  "
              f"{'PASS' if passed else 'MISS'} (<= {BAR})")
    numbers = {"rows": rows, "repeats": args.repeats, "floor_s": floor, "bar": BAR, "passed": ok}
    print(f"stored {write_result('single_pass', numbers, seed=0, config=vars(args), path=args.out, origin=origin)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
