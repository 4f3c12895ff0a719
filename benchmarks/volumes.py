"""Whole CT-sized volumes through sliding-window inference (issue 23, part 4).

A 3D UNet patch model (MONAI UNet, channels 16-32-64-128) at roi ``--roi`` on a ``--size`` volume
(default 512x512x256, roi 96^3, overlap 0.25, Gaussian blending); target: class 1 summed inside a
box of a quarter of each side. For each method of :mod:`medlens.attribution.sliding_window` the
wall time and peak RSS (each in its own process), against the floor: one sliding-window forward,
and forward + backward of every window; MONAI's ``OcclusionSensitivity`` on the same
sliding-window callable with the same patch size and stride (``--monai``; slow at full size).

    OMP_NUM_THREADS=2 python benchmarks/volumes.py --threads 2                      # full size (quiet machine)
    OMP_NUM_THREADS=1 python benchmarks/volumes.py --threads 1 --size 64,64,48 --roi 32 --occlusion-window 16 --monai

Writes ``benchmarks/results/volumes.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import pathlib
import resource
import time
import warnings


def setup(size, roi):
    import torch
    from monai.networks import nets

    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = nets.UNet(spatial_dims=3, in_channels=1, out_channels=2, channels=(16, 32, 64, 128),
                          strides=(2, 2, 2), num_res_units=1).eval()
    x = torch.randn(1, 1, *size, generator=torch.Generator().manual_seed(1))
    box = [(n * 3 // 8, n * 5 // 8) for n in size]
    return model, x, box


def child(task, size, roi, window, threads, queue):
    import torch

    from medlens.attribution import sliding_window as sw

    torch.set_num_threads(threads)
    model, x, box = setup(size, roi)
    inferer = sw.Windows((roi,) * 3, 0.25, "gaussian", batch=1)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    extra = {}
    if task == "floor_forward":
        sw.blended_output(model, x, inferer)
    elif task == "floor_forward_backward":
        st = sw.Stitching(inferer, size, x.dtype, "cpu")
        for s in st.starts:
            p = x[(slice(None), slice(None), *sw._slices(s, inferer.roi))].clone().requires_grad_(True)
            model(p).sum().backward()
    elif task == "monai_occlusion":
        from monai.inferers import sliding_window_inference
        from monai.visualize import OcclusionSensitivity

        weight = sw.region_weight(size, 2, channel=1, box=box)

        class Whole(torch.nn.Module):
            def forward(self, v):
                out = sliding_window_inference(v, (roi,) * 3, 1, model, overlap=0.25, mode="gaussian")
                return (out * weight).flatten(1).sum(1, keepdim=True)

        with torch.no_grad():
            OcclusionSensitivity(Whole(), mask_size=window, overlap=0.0, mode=0.0)(x)
    else:
        options = {"occlusion": {"window": window, "stride": window},
                   "gradcam": {"layer": model.model[0]},  # the first encoder block (half resolution)
                   "integrated_gradients": {"n_steps": 8}}.get(task, {})
        sw.explain_sliding_window(model, x, inferer, task, target_class=1, box=box, **options)
    seconds = time.perf_counter() - start
    queue.put({"seconds": seconds, "peak_mib": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024, **extra})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="512,512,256")
    parser.add_argument("--roi", type=int, default=96)
    parser.add_argument("--occlusion-window", type=int, default=96)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--monai", action="store_true", help="also MONAI's OcclusionSensitivity (one full sliding-window pass per patch)")
    parser.add_argument("--tasks", default="floor_forward,floor_forward_backward,gradient,gradcam,integrated_gradients,occlusion")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split(","))
    tasks = args.tasks.split(",") + (["monai_occlusion"] if args.monai else [])
    ctx = mp.get_context("spawn")
    results = {"size": size, "roi": args.roi, "occlusion_window": args.occlusion_window, "threads": args.threads, "tasks": {}}
    for task in tasks:
        queue = ctx.Queue()
        proc = ctx.Process(target=child, args=(task, size, args.roi, args.occlusion_window, args.threads, queue))
        proc.start()
        proc.join()
        row = queue.get() if not queue.empty() else {"note": "failed"}
        results["tasks"][task] = row
        print(f"{task:24s} {row.get('seconds', float('nan')):8.1f} s  peak {row.get('peak_mib', float('nan')):7.0f} MiB", flush=True)
    out = pathlib.Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "volumes.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
