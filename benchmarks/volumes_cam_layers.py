"""Grad-CAM on the 3D known answer at every stage of the network (issue 23): is a better default layer the fix?

Same networks, volume and region as ``volumes_known_answer.py`` (64^3, region 24^3 at 0.3 of each
side, random-weight MONAI ResNet-18 3D and DenseNet-121 3D); for each stage output (activations,
poolings, blocks) the layer's grid, the share of Grad-CAM's top 1% inside the region, and the
share of the region where the map is positive (what ReLU leaves).

    OMP_NUM_THREADS=1 python benchmarks/volumes_cam_layers.py --threads 2      # about 2-4 min

Stores ``benchmarks/results/volumes_cam_layers.json`` through ``_runner.write_result``.
"""

from __future__ import annotations

import argparse

from _runner import options, provenance, write_result
from volumes_known_answer import build, top_share

STAGES = {"resnet18": ("act", "maxpool", "layer1", "layer2", "layer3", "layer4"),
          "densenet121": ("relu0", "pool0", "transition1.relu", "transition1.pool", "transition2.relu",
                          "transition2.pool", "transition3.relu", "transition3.pool", "denseblock4", "class_layers.relu")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    options(parser, "volumes_cam_layers", seed=None, threads=2)
    args = parser.parse_args()

    import torch

    from medlens.attribution.explain import explain

    torch.set_num_threads(args.threads)
    origin = provenance(seed=0, config=vars(args))  # seeded weights (0) and input (1), fixed here
    result = {"size": 64, "region": 3 / 8, "rows": []}
    for name, stages in STAGES.items():
        model, inside = build(name, 64, 3 / 8)
        x = torch.randn(1, 1, 64, 64, 64, generator=torch.Generator().manual_seed(1))
        layers = [("default", None)] + [(s, ("net." if name == "resnet18" else "net.features.") + s
                                         if not s.startswith("class_layers") else "net." + s) for s in stages]
        for label, layer in layers:
            a = explain(model, x, 1, "gradcam", layer=layer)
            grid = explain(model, x, 1, "gradcam", layer=a.params["layer"], upsample=False).values.shape[2:]
            v = a.values[0, 0]
            row = {"model": name, "layer": label if layer is None else layer, "resolved": str(a.params["layer"]),
                   "grid": list(grid), "top1_inside": top_share(a.values, inside),
                   "region_positive": float((v[inside] > 0).double().mean()), "note": a.extras.get("note")}
            result["rows"].append(row)
            print(f"{name:12s} {row['layer']:34s} grid {'x'.join(map(str, grid)):8s} top1%in {row['top1_inside']:.3f} "
                  f"region>0 {row['region_positive']:.3f}", flush=True)
    write_result("volumes_cam_layers", result, seed=0, path=args.out, origin=origin)


if __name__ == "__main__":
    main()
