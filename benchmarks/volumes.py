"""Whole CT-sized volumes through sliding-window inference (issue 23, part 4).

A 3D UNet patch model (MONAI UNet, channels 16-32-64-128, seeded random weights) at roi ``--roi``
on a ``--size`` volume (default 512x512x256, roi 96^3, overlap 0.25, Gaussian blending, one window
at a time); target: class 1 summed inside a box of a quarter of each side. Each task runs in its
own process; per task: wall time, window evaluations (rows through the patch model), peak RSS
of the process (absolute, and above its level before the call), the machine's load.

* floors: ``floor_forward`` (one sliding-window forward of every window), ``floor_forward_backward``
  (forward + backward to the input of every window, one at a time; no parameter gradients);
* medlens (:mod:`medlens.attribution.sliding_window`): ``gradient``, ``gradcam`` (the first encoder
  block), ``integrated_gradients`` (8 steps), ``occlusion`` (window and stride ``--occlusion-window``);
* ``--monai``: MONAI's ``OcclusionSensitivity`` (``monai.visualize``) on the same sliding-window
  callable, same window, stride = window (``overlap=0``), one occluded volume per batch;
* ``--captum``: Captum's ``Saliency``, ``IntegratedGradients`` (8 steps, one at a time) and
  ``Occlusion`` (same window and stride) on that callable, i.e. autograd through MONAI's
  ``sliding_window_inference``; each under an address-space limit of ``--captum-limit-gb`` so a
  run that keeps every window's activations fails cleanly instead of exhausting the machine.
  (Captum's ``LayerGradCam`` keeps one layer output per forward, while the layer runs once per
  window: it has no Grad-CAM through a sliding-window inferer.)

Full size (medlens and the floors; about 10-20 min on two quiet cores):

    OMP_NUM_THREADS=2 python benchmarks/volumes.py --threads 2

Occlusion against MONAI and Captum (one full sliding-window pass per patch for them, so a smaller volume):

    OMP_NUM_THREADS=2 python benchmarks/volumes.py --threads 2 --size 192,192,96 --occlusion-window 48 \
        --tasks occlusion --monai --captum --out benchmarks/results/volumes_vs_third_party.json

Stores ``benchmarks/results/volumes.json`` (or ``--out``) through ``_runner.write_result`` after each task.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import time
import warnings

from _runner import load_now, options, provenance, write_result


def setup(size):
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


def whole_volume_score(model, size, roi, box):
    """The target as one differentiable callable: MONAI's sliding-window inference, class 1 in the box."""
    import torch
    from monai.inferers import sliding_window_inference

    from medlens.attribution import sliding_window as sw

    weight = sw.region_weight(size, 2, channel=1, box=box)

    class Whole(torch.nn.Module):
        def forward(self, v):
            out = sliding_window_inference(v, (roi,) * 3, 1, model, overlap=0.25, mode="gaussian")
            out = out.as_tensor() if hasattr(out, "as_tensor") else out
            return (out * weight).flatten(1).sum(1, keepdim=True)

    return Whole()


def child(task, size, roi, window, threads, limit_gb, queue):
    import torch

    from medlens.attribution import sliding_window as sw

    torch.set_num_threads(threads)
    warnings.simplefilter("ignore")
    model, x, box = setup(size)
    rows = [0]
    model.register_forward_pre_hook(lambda m, args: rows.__setitem__(0, rows[0] + len(args[0])))
    inferer = sw.Windows((roi,) * 3, 0.25, "gaussian", batch=1)
    if task.startswith("captum") and limit_gb:
        resource.setrlimit(resource.RLIMIT_AS, (int(limit_gb * 2**30), int(limit_gb * 2**30)))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    note = None
    try:
        if task == "floor_forward":
            sw.blended_output(model, x, inferer)
        elif task == "floor_forward_backward":
            st = sw.Stitching(inferer, size, x.dtype, "cpu")
            for s in st.starts:
                p = x[(slice(None), slice(None), *sw._slices(s, inferer.roi))].clone().requires_grad_(True)
                torch.autograd.grad(model(p).sum(), p)  # the input gradient only, as the methods need
        elif task == "monai_occlusion":
            from monai.visualize import OcclusionSensitivity

            with torch.no_grad():
                OcclusionSensitivity(whole_volume_score(model, size, roi, box), mask_size=window, n_batch=1,
                                     verbose=False, mode=0.0, overlap=0.0, activate=False)(x)
        elif task == "captum_gradient":
            from captum.attr import Saliency

            Saliency(whole_volume_score(model, size, roi, box)).attribute(x, target=0, abs=False)
        elif task == "captum_integrated_gradients":
            from captum.attr import IntegratedGradients

            IntegratedGradients(whole_volume_score(model, size, roi, box)).attribute(
                x, target=0, n_steps=8, method="gausslegendre", internal_batch_size=1)
        elif task == "captum_occlusion":
            from captum.attr import Occlusion

            with torch.no_grad():
                Occlusion(whole_volume_score(model, size, roi, box)).attribute(
                    x, target=0, sliding_window_shapes=(1, window, window, window), strides=(1, window, window, window),
                    baselines=0.0, perturbations_per_eval=1)
        else:
            options = {"occlusion": {"window": window, "stride": window},
                       "gradcam": {"layer": model.model[0]},  # the first encoder block (half resolution)
                       "integrated_gradients": {"n_steps": 8}}.get(task, {})
            sw.explain_sliding_window(model, x, inferer, task, target_class=1, box=box, **options)
    except (MemoryError, RuntimeError) as err:
        note = f"failed: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    queue.put({"seconds": seconds, "window_evaluations": rows[0], "peak_rss_mib": peak / 1024,
               "peak_above_start_mib": (peak - before) / 1024, "load": load_now(),
               **({"note": note} if note else {})})


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", default="512,512,256")
    parser.add_argument("--roi", type=int, default=96)
    parser.add_argument("--occlusion-window", type=int, default=96)
    options(parser, "volumes", seed=None, threads=2)
    parser.add_argument("--monai", action="store_true", help="also MONAI's OcclusionSensitivity (one full sliding-window pass per patch)")
    parser.add_argument("--captum", action="store_true", help="also Captum's Saliency, IntegratedGradients and Occlusion")
    parser.add_argument("--captum-limit-gb", type=float, default=8.0, help="address-space limit of each Captum run (GiB)")
    parser.add_argument("--tasks", default="floor_forward,floor_forward_backward,gradient,gradcam,integrated_gradients,occlusion")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split(","))
    tasks = args.tasks.split(",") + (["monai_occlusion"] if args.monai else [])
    captum = {"gradient": "captum_gradient", "integrated_gradients": "captum_integrated_gradients", "occlusion": "captum_occlusion"}
    tasks += [captum[t] for t in args.tasks.split(",") if t in captum] if args.captum else []
    import torch

    torch.set_num_threads(args.threads)  # as each task's process does
    ctx = mp.get_context("spawn")
    origin = provenance(seed=0, config=vars(args))  # seeded weights (0) and volume (1), fixed here
    results = {"size": size, "roi": args.roi, "overlap": 0.25, "blend": "gaussian",
               "occlusion_window": args.occlusion_window, "tasks": {}}
    for task in tasks:
        queue = ctx.Queue()
        proc = ctx.Process(target=child, args=(task, size, args.roi, args.occlusion_window, args.threads,
                                               args.captum_limit_gb, queue))
        proc.start()
        proc.join()
        row = queue.get() if not queue.empty() else {"note": f"process ended with code {proc.exitcode}"}
        results["tasks"][task] = row
        print(f"{task:28s} {row.get('seconds', float('nan')):8.1f} s  {row.get('window_evaluations', 0):6d} windows  "
              f"peak {row.get('peak_rss_mib', float('nan')):7.0f} MiB  {row.get('note', '')}", flush=True)
        write_result("volumes", results, seed=0, path=args.out, origin=origin)
    floor = results["tasks"].get("floor_forward_backward", {}).get("seconds")
    if floor:
        for task in ("gradient", "gradcam"):
            if "seconds" in results["tasks"].get(task, {}):
                results["tasks"][task]["over_forward_backward_floor"] = results["tasks"][task]["seconds"] / floor
        write_result("volumes", results, seed=0, path=args.out, origin=origin)


if __name__ == "__main__":
    main()
