"""The per-operator cost model (``medlens/core/op_cost.py``) against measured time, kernel by kernel
and pass by pass.

The cost rule chooses the defaults of the many-pass methods (RISE's masks, occlusion's windows,
integrated gradients' steps, SmoothGrad's samples) from the predicted seconds of one forward pass on
the reference machine (two cores, torch at two threads). This script measures what it predicts:

* kernels: 3x3 convolutions (2D at 56^2, 3D at 16^3) of 8 to 256 channels, against
  ``PEAK_FLOPS[rank] * conv_efficiency(...)``; an element-wise pass (bandwidth) and a tiny operator
  (per-call overhead);
* passes: one forward pass per input, at the chunk size the engine picks for a forward-only method
  (``medlens.core.engine.chunk_size``), of the networks the defaults were designed on (DESIGN) and
  of networks not used to set any constant (HELD_OUT), as the ratio measured / predicted.

Timings are the best of ``--repeats`` after a warm-up, on whatever else runs on the machine (the load
averages are stored): run it on a quiet machine.

    OMP_NUM_THREADS=2 python benchmarks/op_cost_calibration.py [--threads 2] [--repeats 5] [--only kernels|passes]

Stores ``benchmarks/results/op_cost_calibration.json`` through ``_runner.write_result``.
"""

from __future__ import annotations

import argparse
import time
import warnings

import medlens  # noqa: F401  (first, as in any medlens process: OpenMP threads then sleep when idle)
import torch
from torch import nn

from _runner import load_now, options, provenance, write_result

DESIGN = ("DenseNet-121 2D 160^2", "DenseNet-121 2D 224^2", "ResNet-18 3D 64^3", "DenseNet-121 3D 64^3",
          "UNet 3D 64^3")
HELD_OUT = ("ResNet-18 2D 224^2", "SegResNet 3D 64^3", "ViT-B/16 2D 224^2", "reference CNN 2D 28^2")


def best_seconds(fn, repeats: int) -> float:
    fn()
    runs = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return min(runs)


def kernels(repeats: int) -> list[dict]:
    from medlens.core import op_cost

    rows = []
    for rank, size, channels in ((2, 56, (8, 32, 64, 128, 256)), (3, 16, (8, 32, 64, 128))):
        conv = nn.Conv2d if rank == 2 else nn.Conv3d
        for c in channels:
            layer = conv(c, c, 3, padding=1).eval()
            x = torch.randn(2, c, *(size,) * rank)
            with torch.inference_mode():
                seconds = best_seconds(lambda: layer(x), repeats)
            priced = op_cost.price(layer, x)
            rows.append({"kernel": f"conv{rank}d 3^{rank} {c}->{c} at {size}^{rank}", "measured_s": seconds / 2,
                         "predicted_s": priced.seconds, "ratio": seconds / 2 / priced.seconds,
                         "measured_gflops": 2 * priced.flops / seconds / 1e9})
    big = torch.randn(2, 64, 128, 128)
    tiny = torch.randn(8)
    for name, fn, x in (("relu 64x128^2", torch.relu, big), ("add of 8 numbers", lambda t: t + 1, tiny)):
        with torch.inference_mode():
            seconds = best_seconds(lambda: fn(x), repeats)

        class Op(nn.Module):
            def forward(self, t, fn=fn):
                return fn(t)

        priced = op_cost.price(Op(), x[:1] if x.ndim > 1 else x.unsqueeze(0))
        per_input = seconds / (x.shape[0] if x.ndim > 1 else 1)
        rows.append({"kernel": name, "measured_s": per_input, "predicted_s": priced.seconds,
                     "ratio": per_input / priced.seconds})
    return rows


def networks():
    from monai.networks import nets

    from medlens.models.cnn import CNN

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(0)
        yield "DenseNet-121 2D 160^2", nets.DenseNet121(spatial_dims=2, in_channels=1, out_channels=2), (1, 160, 160)
        yield "DenseNet-121 2D 224^2", nets.DenseNet121(spatial_dims=2, in_channels=1, out_channels=2), (1, 224, 224)
        yield "ResNet-18 3D 64^3", nets.resnet18(spatial_dims=3, n_input_channels=1, num_classes=2), (1, 64, 64, 64)
        yield "DenseNet-121 3D 64^3", nets.DenseNet121(spatial_dims=3, in_channels=1, out_channels=2), (1, 64, 64, 64)
        yield "UNet 3D 64^3", nets.UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=(8, 16, 32, 64),
                                        strides=(2, 2, 2), num_res_units=2), (1, 64, 64, 64)
        yield "ResNet-18 2D 224^2", nets.resnet18(spatial_dims=2, n_input_channels=1, num_classes=2), (1, 224, 224)
        yield "SegResNet 3D 64^3", nets.SegResNet(spatial_dims=3, in_channels=1, out_channels=2), (1, 64, 64, 64)
        yield "ViT-B/16 2D 224^2", nets.ViT(1, (224, 224), (16, 16), classification=True, num_classes=2,
                                            spatial_dims=2), (1, 224, 224)
        yield "reference CNN 2D 28^2", CNN(2, 1, 2), (1, 28, 28)


def passes(repeats: int) -> list[dict]:
    from medlens.core import op_cost
    from medlens.core.engine import Budget, chunk_size

    rows = []
    for name, model, shape in networks():
        model.eval()
        one = torch.randn(1, *shape)
        chunk = chunk_size(model, one, 10_000, "forward", Budget())
        x = torch.randn(chunk, *shape)
        with torch.inference_mode():
            seconds = best_seconds(lambda: model(x), repeats) / chunk
        predicted = op_cost.forward_seconds(model, one)
        rows.append({"network": name, "set": "design" if name in DESIGN else "held-out", "chunk": chunk,
                     "measured_s": seconds, "predicted_s": predicted, "ratio": seconds / predicted,
                     "load": load_now()})
        print(f"{name:24s} {rows[-1]['set']:9s} chunk {chunk:4d}  measured {1000 * seconds:8.1f} ms  "
              f"predicted {1000 * predicted:8.1f} ms  ratio {rows[-1]['ratio']:.2f}", flush=True)
    return rows


def main() -> None:
    parser = options(argparse.ArgumentParser(description=__doc__.splitlines()[0]), "op_cost_calibration",
                     seed=0, threads=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=("kernels", "passes"), default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    origin = provenance(seed=0, config=vars(args))
    numbers: dict = {}
    if args.only in (None, "kernels"):
        numbers["kernels"] = kernels(args.repeats)
        for row in numbers["kernels"]:
            print(f"{row['kernel']:32s} measured {1e3 * row['measured_s']:8.3f} ms  predicted "
                  f"{1e3 * row['predicted_s']:8.3f} ms  ratio {row['ratio']:.2f}", flush=True)
        write_result("op_cost_calibration", numbers, seed=0, path=args.out, origin=origin)
    if args.only in (None, "passes"):
        numbers["passes"] = passes(args.repeats)
        for group in ("design", "held-out"):
            ratios = [r["ratio"] for r in numbers["passes"] if r["set"] == group]
            numbers[f"{group}_ratio_range"] = [min(ratios), max(ratios)]
        print("measured / predicted: design", numbers["design_ratio_range"], "held-out", numbers["held-out_ratio_range"])
    print("stored", write_result("op_cost_calibration", numbers, seed=0, path=args.out, origin=origin))


if __name__ == "__main__":
    main()
